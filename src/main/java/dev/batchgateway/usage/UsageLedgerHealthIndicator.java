package dev.batchgateway.usage;

import dev.batchgateway.completion.UsageLedger;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.stereotype.Component;

/**
 * {@code usageLedger} in the readiness group: DOWN while the usage buffer is full, when the gateway answers 503 to
 * every completion anyway, so a load balancer sends traffic elsewhere; UP again by itself once the rows are written.
 * A database that is away is not by itself a reason to be unready: the buffer carries the gateway through.
 */
@Component
class UsageLedgerHealthIndicator implements HealthIndicator {

    private final UsageLedger ledger;

    UsageLedgerHealthIndicator(UsageLedger ledger) {
        this.ledger = ledger;
    }

    @Override
    public Health health() {
        var health = ledger.saturated() ? Health.down() : Health.up();
        return health.withDetail("pending", ledger.pending()).withDetail("capacity", ledger.capacity()).build();
    }
}
