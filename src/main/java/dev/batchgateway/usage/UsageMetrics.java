package dev.batchgateway.usage;

import dev.batchgateway.completion.UsageEvents;
import dev.batchgateway.completion.UsageJournalException;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageWriteException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.List;
import org.springframework.stereotype.Component;

/**
 * The usage ledger's reports as Micrometer meters, under {@code gateway.usage.*} (Prometheus:
 * {@code gateway_usage_rows_written_total}, {@code gateway_usage_write_failures_total{kind}},
 * {@code gateway_usage_rows_rejected_total}, {@code gateway_usage_write_latency_seconds},
 * {@code gateway_usage_rows_unaccounted_total{kind}}). The pending rows are a gauge
 * of {@link UsageLedgerGauges}.
 */
@Component
class UsageMetrics implements UsageEvents {

    private final Counter rowsWritten;
    private final Counter rowsRejected;
    private final Counter recoverableFailures;
    private final Counter permanentFailures;
    private final Timer writeLatency;
    private final Counter rowsJournaled;
    private final Counter journalFailures;
    private final Counter rowsUnbilled;
    private final Counter rowsInDoubt;

    UsageMetrics(MeterRegistry registry) {
        this.rowsWritten = Counter.builder("gateway.usage.rows.written")
                .description("usage rows written to the store")
                .register(registry);
        this.rowsRejected = Counter.builder("gateway.usage.rows.rejected")
                .description("usage rows the store refused for good; logged with their content and dropped")
                .register(registry);
        this.recoverableFailures = failures(registry, "recoverable");
        this.permanentFailures = failures(registry, "permanent");
        this.writeLatency = Timer.builder("gateway.usage.write.latency")
                .description("time of one successful usage write (one round trip, up to a thousand rows)")
                .register(registry);
        this.rowsJournaled = Counter.builder("gateway.usage.rows.journaled")
                .description("usage rows written to the local journal while the store was away (replayed when it is back)")
                .register(registry);
        this.journalFailures = Counter.builder("gateway.usage.journal.failures")
                .description("appends the usage journal refused (full, unwritable): their callers got 503")
                .register(registry);
        this.rowsUnbilled = unaccounted(registry, "unbilled");
        this.rowsInDoubt = unaccounted(registry, "in_doubt");
    }

    private static Counter unaccounted(MeterRegistry registry, String kind) {
        return Counter.builder("gateway.usage.rows.unaccounted")
                .description("usage rows of users with token limits that could not be charged to a live budget hold: "
                        + "their answers got 503, the worker's work was wasted; in_doubt: the write's answer was lost")
                .tag("kind", kind)
                .register(registry);
    }

    private static Counter failures(MeterRegistry registry, String kind) {
        return Counter.builder("gateway.usage.write.failures")
                .description("usage writes that failed; recoverable ones are retried with back-off")
                .tag("kind", kind)
                .register(registry);
    }

    @Override
    public void written(int rows, Duration latency) {
        rowsWritten.increment(rows);
        writeLatency.record(latency);
    }

    @Override
    public void writeFailed(UsageWriteException failure) {
        switch (failure) {
            case UsageWriteException.Recoverable recoverable -> recoverableFailures.increment();
            case UsageWriteException.Permanent permanent -> permanentFailures.increment();
        }
    }

    @Override
    public void journaled(int rows, Duration latency) {
        rowsJournaled.increment(rows);
    }

    @Override
    public void journalFailed(UsageJournalException failure) {
        journalFailures.increment();
    }

    @Override
    public void rejected(List<UsageRecord> rows, UsageWriteException.Permanent refusal) {
        rowsRejected.increment(rows.size());
    }

    @Override
    public void unaccounted(List<UsageRecord> rows, boolean inDoubt, boolean firstOfOutage) {
        (inDoubt ? rowsInDoubt : rowsUnbilled).increment(rows.size());
    }
}
