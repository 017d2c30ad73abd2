package dev.batchgateway.batch;

/**
 * A refusal of the Batch API, answered in OpenAI's error shape: what kind it is decides the status.
 */
public sealed class BatchApiException extends RuntimeException {

    private final String param;

    BatchApiException(String message, String param) {
        super(message, null, false, false);
        this.param = param;
    }

    /** The request field at fault, or null. */
    public String param() {
        return param;
    }

    /** 400: the request is wrong (a field, or a file over a limit, named in the message). */
    public static final class Invalid extends BatchApiException {
        public Invalid(String param, String message) {
            super(message, param);
        }
    }

    /** 404: no such file or batch of the caller's (another user's is not revealed to exist). */
    public static final class NotFound extends BatchApiException {
        public NotFound(String message) {
            super(message, null);
        }
    }

    /** 409: the request contradicts what the batch or file is doing (deleting a running batch's input, …). */
    public static final class Conflict extends BatchApiException {
        public Conflict(String message) {
            super(message, null);
        }
    }
}
