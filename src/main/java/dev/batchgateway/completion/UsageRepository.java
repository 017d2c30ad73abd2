package dev.batchgateway.completion;

import java.util.List;
import java.util.Set;
import java.util.UUID;

/** Where token usage is kept for billing. */
public interface UsageRepository {

    /**
     * Records the rows in one round trip, and charges their budget charges for the rows it inserted. Idempotent: a row
     * whose request id is already recorded is skipped, so writing the same rows again never counts them twice. For
     * rows whose answers already left (a journal's replay): their charges count whether or not their holds still live.
     *
     * @throws UsageWriteException.Recoverable when the store is unreachable and the write may succeed later
     * @throws UsageWriteException.Permanent when the rows are refused for what they contain
     */
    void record(List<UsageRecord> rows);

    /**
     * Records the rows as {@link #record} does, in one round trip, except that a row with budget charges is written
     * (and charged) only if every hold it charges is still live in the store: the hold its request reserved from, not
     * expired. Rows refused so are neither written nor billed: their answers must not leave.
     *
     * @return the request ids of the rows refused for a hold that is no longer live
     * @throws UsageWriteException.Recoverable when the store is unreachable (then no row is known to be written)
     * @throws UsageWriteException.Permanent when the rows are refused for what they contain
     */
    default Set<UUID> recordOnLiveHolds(List<UsageRecord> rows) {
        record(rows);
        return Set.of();
    }
}
