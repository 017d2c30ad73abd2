package dev.batchgateway.completion;

/** The worker could not complete a batch; the subtype says whose fault it was. */
public abstract sealed class WorkerException extends RuntimeException
        permits WorkerException.Unavailable,
                WorkerException.TimedOut,
                WorkerException.BadAnswer,
                WorkerException.Rejected,
                WorkerException.Misconfigured {

    private WorkerException(String message, Throwable cause) {
        super(message, cause);
    }

    /** No worker could be reached: refused connection, unknown host, every worker out of rotation. */
    public static final class Unavailable extends WorkerException {
        public Unavailable(String message, Throwable cause) {
            super(message, cause);
        }

        public Unavailable(String message) {
            this(message, null);
        }
    }

    /** The worker did not answer in time; the call was abandoned. */
    public static final class TimedOut extends WorkerException {
        public TimedOut(String message, Throwable cause) {
            super(message, cause);
        }

        public TimedOut(String message) {
            this(message, null);
        }
    }

    /** The worker answered with an error status or with something that is not a valid answer for the batch. */
    public static final class BadAnswer extends WorkerException {
        public BadAnswer(String message, Throwable cause) {
            super(message, cause);
        }

        public BadAnswer(String message) {
            this(message, null);
        }
    }

    /**
     * The worker refused this prompt as invalid (longer than the model's context, a value out of range): the caller's
     * request is at fault, not the worker. The message carries the worker's own reason.
     */
    public static final class Rejected extends WorkerException {
        public Rejected(String message) {
            super(message, null);
        }
    }

    /**
     * The worker refuses every call because the gateway is set up wrong for it: a wrong or missing API key, a model
     * it does not serve. Not the caller's fault and not an overload: it will not heal by itself.
     */
    public static final class Misconfigured extends WorkerException {
        public Misconfigured(String message) {
            super(message, null);
        }
    }
}
