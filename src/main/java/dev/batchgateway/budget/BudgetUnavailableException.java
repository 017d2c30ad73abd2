package dev.batchgateway.budget;

import java.time.Duration;

/**
 * A limited user's request cannot be admitted: the budget store is away and this instance holds no budget left for
 * it (or does not yet know the users' limits). Failing closed: never serve what might be billed beyond a limit.
 */
public final class BudgetUnavailableException extends RuntimeException {

    private final Duration retryAfter;

    public BudgetUnavailableException(String message, Duration retryAfter, Throwable cause) {
        super(message, cause);
        this.retryAfter = retryAfter;
    }

    public Duration retryAfter() {
        return retryAfter;
    }
}
