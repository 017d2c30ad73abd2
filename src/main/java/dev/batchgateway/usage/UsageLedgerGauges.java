package dev.batchgateway.usage;

import dev.batchgateway.completion.UsageLedger;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import org.springframework.stereotype.Component;

/** How full the usage buffer is: {@code gateway.usage.rows.pending} against {@code gateway.usage.rows.capacity}. */
@Component
class UsageLedgerGauges implements MeterBinder {

    private final UsageLedger ledger;

    UsageLedgerGauges(UsageLedger ledger) {
        this.ledger = ledger;
    }

    @Override
    public void bindTo(MeterRegistry registry) {
        Gauge.builder("gateway.usage.rows.pending", ledger, UsageLedger::pending)
                .description("usage rows served but not yet in the store")
                .register(registry);
        Gauge.builder("gateway.usage.rows.capacity", ledger, UsageLedger::capacity)
                .description("pending usage rows at which the gateway turns requests away (503) and is not ready")
                .register(registry);
    }
}
