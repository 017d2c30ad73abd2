package dev.batchgateway.budget;

/**
 * The budget store could not be reached. {@link #notSent()}: the statement certainly never reached it (no connection
 * could be had); otherwise an operation may have applied or not.
 */
public class BudgetStoreUnavailableException extends RuntimeException {

    private final boolean notSent;

    public BudgetStoreUnavailableException(String message, Throwable cause) {
        this(message, cause, false);
    }

    public BudgetStoreUnavailableException(String message, Throwable cause, boolean notSent) {
        super(message, cause);
        this.notSent = notSent;
    }

    /** Whether the statement certainly never reached the store, so nothing of it applied. */
    public boolean notSent() {
        return notSent;
    }
}
