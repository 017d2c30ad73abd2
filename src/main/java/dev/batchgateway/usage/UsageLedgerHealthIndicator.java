package dev.batchgateway.usage;

import dev.batchgateway.completion.UsageLedger;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.stereotype.Component;

/**
 * {@code usageLedger} in the readiness group: DOWN while the ledger is saturated (rows can be made durable neither in
 * the database nor in the journal, or too many wait in memory), when the gateway answers 503 to every completion
 * anyway, so a load balancer sends traffic elsewhere; UP again by itself once rows are durable again. A database that
 * is away is not by itself a reason to be unready: the journal carries the gateway through.
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
