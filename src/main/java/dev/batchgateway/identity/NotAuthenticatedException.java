package dev.batchgateway.identity;

/**
 * The request needs credentials it does not carry. One and the same message whether the key was missing, malformed,
 * unknown or revoked, so that answers tell nobody which keys exist.
 */
public class NotAuthenticatedException extends RuntimeException {

    public static final String API_KEY_REQUIRED = "a valid API key is required: send Authorization: Bearer <key>";
    public static final String ADMIN_TOKEN_REQUIRED = "the admin token is required: send Authorization: Bearer <admin token>";

    public NotAuthenticatedException(String message) {
        super(message, null, false, false);
    }
}
