package dev.batchgateway.identity;

/** The caller is known, but what it asks for is not its own (another user's id or usage), or the feature is off. */
public class NotAllowedException extends RuntimeException {

    public NotAllowedException(String message) {
        super(message, null, false, false);
    }
}
