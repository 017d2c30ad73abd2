package dev.batchgateway.completion;

/** Usage rows could not be journaled: the journal is full, or its directory cannot be written. */
public final class UsageJournalException extends RuntimeException {
    public UsageJournalException(String message, Throwable cause) {
        super(message, cause);
    }
}
