package dev.batchgateway.identity;

/** The key store could not be reached: nobody can be identified now, which is not the caller's fault. */
public class KeyStoreUnavailableException extends RuntimeException {

    public KeyStoreUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
