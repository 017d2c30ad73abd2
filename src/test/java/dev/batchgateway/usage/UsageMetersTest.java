package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.ManualTicker;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.UsageEvents;
import dev.batchgateway.completion.UsageLedger;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageWriteException;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.boot.health.contributor.Status;

/** The ledger's reports as meters and as readiness, with exact values after known events. */
class UsageMetersTest {

    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

    @Test
    void writesFailuresAndRefusalsAreCountedExactly() {
        // Given the usage metrics
        var metrics = new UsageMetrics(registry);

        // When two writes of 3 and 4 rows succeed, taking 10 and 30 ms, two writes fail recoverably, one permanently,
        // and two rows are refused for good
        metrics.written(3, Duration.ofMillis(10));
        metrics.written(4, Duration.ofMillis(30));
        metrics.writeFailed(new UsageWriteException.Recoverable("away", null));
        metrics.writeFailed(new UsageWriteException.Recoverable("away", null));
        metrics.writeFailed(new UsageWriteException.Permanent("refused", null));
        metrics.rejected(List.of(row(), row()), new UsageWriteException.Permanent("refused", null));

        // Then each meter holds exactly that
        assertThat(registry.get("gateway.usage.rows.written").counter().count()).isEqualTo(7.0);
        assertThat(registry.get("gateway.usage.write.failures").tag("kind", "recoverable").counter().count()).isEqualTo(2.0);
        assertThat(registry.get("gateway.usage.write.failures").tag("kind", "permanent").counter().count()).isEqualTo(1.0);
        assertThat(registry.get("gateway.usage.rows.rejected").counter().count()).isEqualTo(2.0);
        var latency = registry.get("gateway.usage.write.latency").timer();
        assertThat(latency.count()).isEqualTo(2);
        assertThat(latency.totalTime(TimeUnit.MILLISECONDS)).isEqualTo(40.0);
    }

    @Test
    void theGaugesShowPendingRowsAgainstCapacity() throws Exception {
        // Given a ledger of capacity 5 whose writer has not started, with three rows pending
        var ledger = ledger(5);
        ledger.record(List.of(row(), row(), row()));

        // When its gauges are bound
        new UsageLedgerGauges(ledger).bindTo(registry);

        // Then they read the pending rows and the capacity
        assertThat(registry.get("gateway.usage.rows.pending").gauge().value()).isEqualTo(3.0);
        assertThat(registry.get("gateway.usage.rows.capacity").gauge().value()).isEqualTo(5.0);
    }

    @Test
    void readinessIsDownExactlyWhileTheLedgerIsSaturated() {
        // Given a ledger of capacity 2 whose writer has not started
        var ledger = ledger(2);
        var indicator = new UsageLedgerHealthIndicator(ledger);

        // When one row is pending, it is up, with the counts
        ledger.record(List.of(row()));
        var health = indicator.health();
        assertThat(health.getStatus()).isEqualTo(Status.UP);
        assertThat(health.getDetails()).isEqualTo(Map.of("pending", 1, "capacity", 2));

        // When a second row fills it, it is down
        ledger.record(List.of(row()));
        assertThat(indicator.health().getStatus()).isEqualTo(Status.DOWN);
        assertThat(indicator.health().getDetails()).isEqualTo(Map.of("pending", 2, "capacity", 2));
    }

    private static UsageLedger ledger(int capacity) {
        return new UsageLedger(rows -> {}, capacity, 10, Duration.ofMillis(1), Duration.ofMillis(1), new ManualTicker(),
                UsageEvents.NONE);
    }

    private static UsageRecord row() {
        return new UsageRecord(UUID.randomUUID(), 42, new TokenUsage(1, 2), "m", Instant.now());
    }
}
