package dev.batchgateway.completion;

import java.time.Duration;
import java.util.List;

/** What the usage ledger reports while it works, for metrics. Every method defaults to doing nothing. */
public interface UsageEvents {

    UsageEvents NONE = new UsageEvents() {};

    /** Rows reached the store in one write. */
    default void written(int rows, Duration latency) {}

    /** A write failed; the rows stay pending when the failure is recoverable. */
    default void writeFailed(UsageWriteException failure) {}

    /** The store refused these rows for good; they are logged and dropped. */
    default void rejected(List<UsageRecord> rows) {}
}
