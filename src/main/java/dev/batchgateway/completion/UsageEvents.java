package dev.batchgateway.completion;

import java.time.Duration;
import java.util.List;

/**
 * What the usage ledger reports while it works, for metrics and logs. Every method defaults to doing nothing.
 *
 * <p>The ledger has no logger of its own for these: the JDK's logging is reset by its own shutdown hook while the
 * application is still shutting down, which would lose exactly the report that matters most, {@link #unwritten}.
 * The ledger ignores an observer that throws; it neither stops writing nor writes the rows again.
 */
public interface UsageEvents {

    UsageEvents NONE = new UsageEvents() {};

    /** Rows reached the store in one write. */
    default void written(int rows, Duration latency) {}

    /** A write failed; the rows stay pending when the failure is recoverable. */
    default void writeFailed(UsageWriteException failure) {}

    /** The store was away and these rows reached the local journal in one fsynced append. */
    default void journaled(int rows, Duration latency) {}

    /** The journal refused rows (full, unwritable): their callers are turned away, the rows stay pending. */
    default void journalFailed(UsageJournalException failure) {}

    /** The store refused these rows for good; they are dropped, and this report is all that is left of them. */
    default void rejected(List<UsageRecord> rows, UsageWriteException.Permanent refusal) {}

    /**
     * These rows are in no store and never will be: still pending when the ledger closed, or recorded after it had
     * closed. This report is all that is left of them, for recovery by hand.
     */
    default void unwritten(List<UsageRecord> rows) {}

    /**
     * These rows of limited users could not be accounted against a live budget hold (the store out of reach, or the
     * hold expired): not written, nobody billed, their answers turned away, the worker's work wasted. {@code inDoubt}:
     * their write's answer was lost, so they may be in the store after all. {@code firstOfOutage}: the first such report
     * since the store last took rows (log that one, not every request).
     */
    default void unaccounted(List<UsageRecord> rows, boolean inDoubt, boolean firstOfOutage) {}

    /** Reports to each observer in turn (one that throws keeps the rest from hearing of that event). */
    static UsageEvents all(List<? extends UsageEvents> observers) {
        List<UsageEvents> each = List.copyOf(observers);
        if (each.isEmpty()) {
            return NONE;
        }
        if (each.size() == 1) {
            return each.getFirst();
        }
        return new UsageEvents() {
            @Override
            public void written(int rows, Duration latency) {
                each.forEach(observer -> observer.written(rows, latency));
            }

            @Override
            public void writeFailed(UsageWriteException failure) {
                each.forEach(observer -> observer.writeFailed(failure));
            }

            @Override
            public void journaled(int rows, Duration latency) {
                each.forEach(observer -> observer.journaled(rows, latency));
            }

            @Override
            public void journalFailed(UsageJournalException failure) {
                each.forEach(observer -> observer.journalFailed(failure));
            }

            @Override
            public void rejected(List<UsageRecord> rows, UsageWriteException.Permanent refusal) {
                each.forEach(observer -> observer.rejected(rows, refusal));
            }

            @Override
            public void unwritten(List<UsageRecord> rows) {
                each.forEach(observer -> observer.unwritten(rows));
            }

            @Override
            public void unaccounted(List<UsageRecord> rows, boolean inDoubt, boolean firstOfOutage) {
                each.forEach(observer -> observer.unaccounted(rows, inDoubt, firstOfOutage));
            }
        };
    }
}
