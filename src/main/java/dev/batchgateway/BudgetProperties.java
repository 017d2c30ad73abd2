package dev.batchgateway;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * How instances hold their budget slices: {@code GATEWAY_BUDGET_LEASE_EXPIRY} (default 30s), how long PostgreSQL keeps
 * a hold its instance does not renew (a killed instance's slices are everyone's again within it), and {@code
 * GATEWAY_BUDGET_STATEMENT_TIMEOUT} (default 5s), how long a lease or give-back waits for its answer before the gateway
 * reads back whether it committed. Bound from {@code gateway.budget.*}.
 */
@ConfigurationProperties("gateway.budget")
public record BudgetProperties(Duration leaseExpiry, Duration statementTimeout) {

    public BudgetProperties {
        if (leaseExpiry == null) {
            leaseExpiry = Duration.ofSeconds(30);
        }
        if (statementTimeout == null) {
            statementTimeout = Duration.ofSeconds(5);
        }
        if (leaseExpiry.compareTo(Duration.ofSeconds(3)) < 0) {
            throw new InvalidConfigurationException("GATEWAY_BUDGET_LEASE_EXPIRY must be at least 3s, was " + leaseExpiry);
        }
        // a renewal that times out leaves time for its read-back and another renewal before the slice must stop serving
        if (!statementTimeout.isPositive() || statementTimeout.multipliedBy(3).compareTo(leaseExpiry) > 0) {
            throw new InvalidConfigurationException("GATEWAY_BUDGET_STATEMENT_TIMEOUT must be positive and at most a third of "
                    + "GATEWAY_BUDGET_LEASE_EXPIRY (" + leaseExpiry + "), was " + statementTimeout);
        }
    }
}
