package dev.batchgateway.budget;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.time.Duration;

/**
 * How instances hold their budget slices, bound from {@code gateway.budget.*} ({@code GATEWAY_BUDGET_…}); each unset is
 * its default.
 *
 * @param leaseExpiry how long the store keeps a hold its instance does not renew: a killed instance's slices are
 *     everyone's again within it (default 30s, at least 3s)
 * @param statementTimeout how long a lease or give-back waits for its answer before the gateway reads back whether it
 *     committed (default 5s, at most a third of the lease expiry)
 * @param idleReturn a slice nobody reserved from for this long goes back to the store (default 1s)
 * @param maxLeaseAge a slice of a tight budget this old goes back, used or not (default 3s)
 * @param maxAmpleLeaseAge a slice of an ample budget this old goes back, used or not (default 30s)
 * @param flushEvery how often slices due are given back and billed amounts reported (default 250ms)
 * @param limitsEvery how often users' limits are read again: a change applies within this and a flush (default 1s)
 * @param forgetEvery how often windows long over are deleted from the store (default 10m)
 */
public record BudgetSettings(
        Duration leaseExpiry,
        Duration statementTimeout,
        Duration idleReturn,
        Duration maxLeaseAge,
        Duration maxAmpleLeaseAge,
        Duration flushEvery,
        Duration limitsEvery,
        Duration forgetEvery) {

    public BudgetSettings {
        leaseExpiry = leaseExpiry == null ? Budgets.DEFAULT_LEASE_EXPIRY : leaseExpiry;
        statementTimeout = statementTimeout == null ? Duration.ofSeconds(5) : statementTimeout;
        idleReturn = idleReturn == null ? Budgets.Timing.DEFAULT.idleReturn() : idleReturn;
        maxLeaseAge = maxLeaseAge == null ? Budgets.Timing.DEFAULT.maxLeaseAge() : maxLeaseAge;
        maxAmpleLeaseAge = maxAmpleLeaseAge == null ? Budgets.Timing.DEFAULT.maxAmpleLeaseAge() : maxAmpleLeaseAge;
        flushEvery = flushEvery == null ? Budgets.Timing.DEFAULT.flushEvery() : flushEvery;
        limitsEvery = limitsEvery == null ? Budgets.Timing.DEFAULT.limitsEvery() : limitsEvery;
        forgetEvery = forgetEvery == null ? Budgets.Timing.DEFAULT.forgetEvery() : forgetEvery;
        if (leaseExpiry.compareTo(Duration.ofSeconds(3)) < 0) {
            throw new InvalidConfigurationException("GATEWAY_BUDGET_LEASE_EXPIRY must be at least 3s, was " + leaseExpiry);
        }
        // a renewal that times out leaves time for its read-back and another renewal before the slice must stop serving
        if (!statementTimeout.isPositive() || statementTimeout.multipliedBy(3).compareTo(leaseExpiry) > 0) {
            throw new InvalidConfigurationException("GATEWAY_BUDGET_STATEMENT_TIMEOUT must be positive and at most a third of "
                    + "GATEWAY_BUDGET_LEASE_EXPIRY (" + leaseExpiry + "), was " + statementTimeout);
        }
        requirePositive(idleReturn, "GATEWAY_BUDGET_IDLE_RETURN");
        requirePositive(maxLeaseAge, "GATEWAY_BUDGET_MAX_LEASE_AGE");
        requirePositive(maxAmpleLeaseAge, "GATEWAY_BUDGET_MAX_AMPLE_LEASE_AGE");
        requirePositive(flushEvery, "GATEWAY_BUDGET_FLUSH_EVERY");
        requirePositive(limitsEvery, "GATEWAY_BUDGET_LIMITS_EVERY");
        requirePositive(forgetEvery, "GATEWAY_BUDGET_FORGET_EVERY");
    }

    /** How leases live, as {@link Budgets} takes it. */
    public Budgets.Timing timing() {
        return new Budgets.Timing(idleReturn, maxLeaseAge, maxAmpleLeaseAge, flushEvery, limitsEvery, forgetEvery);
    }

    private static void requirePositive(Duration duration, String variable) {
        if (!duration.isPositive()) {
            throw new InvalidConfigurationException(variable + " must be a positive duration (e.g. 1s), was " + duration);
        }
    }
}
