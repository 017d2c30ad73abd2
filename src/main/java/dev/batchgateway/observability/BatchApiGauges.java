package dev.batchgateway.observability;

import dev.batchgateway.batch.BatchRunner;
import dev.batchgateway.batch.BatchStatus;
import dev.batchgateway.batch.BatchStore;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.time.Duration;
import java.util.Locale;
import java.util.function.ToDoubleFunction;
import org.springframework.stereotype.Component;

/**
 * The Batch API's metrics: the cluster's batches by status and the running batches' lines by state (queued, in flight,
 * done, failed), read from the shared store at most every {@value #CENSUS_EVERY_SECONDS} s (every instance reports the
 * same numbers: take one, e.g. {@code max}), and the lines this instance has run and has in flight.
 */
@Component
class BatchApiGauges implements MeterBinder {

    private static final long CENSUS_EVERY_SECONDS = 5;

    private final BatchStore store;
    private final BatchRunner runner;
    private volatile BatchStore.Census census;
    private volatile long censusTakenAt;

    BatchApiGauges(BatchStore store, BatchRunner runner) {
        this.store = store;
        this.runner = runner;
    }

    @Override
    public void bindTo(MeterRegistry registry) {
        for (BatchStatus status : BatchStatus.values()) {
            Gauge.builder("gateway.batch.api.batches", this, gauges -> gauges.count(census -> census.batches().get(status)))
                    .description("Batch API batches in the cluster, by status")
                    .tag("status", status.wireName())
                    .register(registry);
        }
        line(registry, "queued", census -> census.linesQueued());
        line(registry, "in_flight", census -> census.linesInFlight());
        line(registry, "done", census -> census.linesDone());
        line(registry, "failed", census -> census.linesFailed());
        FunctionCounter.builder("gateway.batch.api.lines.run", runner, BatchRunner::linesRun)
                .description("Batch lines this instance ran to their end (answered or refused)")
                .register(registry);
        Gauge.builder("gateway.batch.api.lines.here", runner, BatchRunner::linesInFlight)
                .description("Batch lines this instance has with the scheduler now")
                .register(registry);
    }

    private void line(MeterRegistry registry, String state, ToDoubleFunction<BatchStore.Census> count) {
        Gauge.builder("gateway.batch.api.lines", this, gauges -> gauges.count(count))
                .description("Lines of running Batch API batches in the cluster, by state")
                .tag("state", state.toLowerCase(Locale.ROOT))
                .register(registry);
    }

    /** A number of the latest census, taken again when it is older than a few seconds; NaN while the store is away. */
    private double count(ToDoubleFunction<BatchStore.Census> count) {
        long now = System.nanoTime();
        if (census == null || now - censusTakenAt > Duration.ofSeconds(CENSUS_EVERY_SECONDS).toNanos()) {
            try {
                census = store.census();
                censusTakenAt = now;
            } catch (RuntimeException away) {
                return Double.NaN;
            }
        }
        return count.applyAsDouble(census);
    }
}
