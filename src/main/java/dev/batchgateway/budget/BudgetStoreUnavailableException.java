package dev.batchgateway.budget;

/** The budget store could not be reached. */
public class BudgetStoreUnavailableException extends RuntimeException {

    public BudgetStoreUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
