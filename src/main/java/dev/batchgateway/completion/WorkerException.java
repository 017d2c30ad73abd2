package dev.batchgateway.completion;

/** The worker could not complete a batch; the subtype says whose fault it was. */
public abstract sealed class WorkerException extends RuntimeException
        permits WorkerException.Unavailable, WorkerException.TimedOut, WorkerException.BadAnswer {

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
}
