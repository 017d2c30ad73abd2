package dev.batchgateway.identity;

/** The audit log could not keep an entry (PostgreSQL away): the operator's change is not made without its record. */
public class AuditUnavailableException extends RuntimeException {

    public AuditUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
