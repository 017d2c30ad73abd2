package dev.batchgateway.completion;

import java.util.List;

/** Where token usage is kept for billing. */
public interface UsageRepository {

    /**
     * Records the rows in one round trip. Idempotent: a row whose request id is already recorded is skipped, so
     * writing the same rows again never counts them twice.
     *
     * @throws UsageWriteException.Recoverable when the store is unreachable and the write may succeed later
     * @throws UsageWriteException.Permanent when the rows are refused for what they contain
     */
    void record(List<UsageRecord> rows);
}
