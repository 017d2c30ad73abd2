package dev.batchgateway.completion;

/** Usage rows could not be written; the subtype says whether writing them again can succeed. */
public abstract sealed class UsageWriteException extends RuntimeException
        permits UsageWriteException.Recoverable, UsageWriteException.Permanent {

    private UsageWriteException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The store is away or overloaded (no connection, timeout): the same rows can be written later. */
    public static final class Recoverable extends UsageWriteException {
        public Recoverable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The rows themselves are refused (a constraint): writing them again fails again. */
    public static final class Permanent extends UsageWriteException {
        public Permanent(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
