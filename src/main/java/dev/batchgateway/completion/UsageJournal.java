package dev.batchgateway.completion;

import java.util.List;

/**
 * A local, durable place for usage rows while the {@link UsageRepository} is away: what is appended here survives a
 * crash of the process (and of the machine, as far as its disk does), and is handed to the store later by
 * {@link #replay}. The usage ledger writes here only when the store failed, so that an answer never leaves before
 * its row is durable somewhere.
 */
public interface UsageJournal {

    /** No journal: every append is refused, so while the store is away callers get 503 instead of answers. */
    UsageJournal NONE = new UsageJournal() {
        @Override
        public void append(List<UsageRecord> rows) {
            throw new UsageJournalException("no usage journal is configured", null);
        }

        @Override
        public boolean isEmpty() {
            return true;
        }

        @Override
        public int replay(int rowsPerWrite, UsageRepository store) {
            return 0;
        }
    };

    /**
     * Appends the rows and returns only once they are on durable storage (fsynced).
     *
     * @throws UsageJournalException when they cannot be (the journal is full or cannot be written); none of the rows
     *     is then counted as journaled
     */
    void append(List<UsageRecord> rows);

    /** True when no journaled row waits to be replayed. */
    boolean isEmpty();

    /**
     * Hands the journaled rows to the store, oldest first, at most {@code rowsPerWrite} in one call, and forgets those
     * it took; rows appended while this runs wait for the next replay. Safe to repeat after a failure: the store skips
     * request ids it already has.
     *
     * @return how many rows the store took
     * @throws UsageWriteException as the store threw it; the rows not yet taken stay journaled
     */
    int replay(int rowsPerWrite, UsageRepository store);
}
