package dev.batchgateway.completion;

/** Usage rows could not be written; the subtype says whether writing them again can succeed. */
public abstract sealed class UsageWriteException extends RuntimeException
        permits UsageWriteException.Recoverable, UsageWriteException.Permanent {

    private UsageWriteException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The store is away or overloaded (no connection, timeout): the same rows can be written later. */
    public static final class Recoverable extends UsageWriteException {
        private final boolean maybeWritten;

        /** A failure before anything reached the store (no connection could be had): nothing was written. */
        public Recoverable(String message, Throwable cause) {
            this(message, cause, false);
        }

        /** @param maybeWritten whether the write may have reached the store and commit there all the same (a timeout) */
        public Recoverable(String message, Throwable cause, boolean maybeWritten) {
            super(message, cause);
            this.maybeWritten = maybeWritten;
        }

        /** Whether the rows may be in the store after all: the statement left, and its answer did not come. */
        public boolean maybeWritten() {
            return maybeWritten;
        }
    }

    /** The rows themselves are refused (a constraint): writing them again fails again. */
    public static final class Permanent extends UsageWriteException {
        public Permanent(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
