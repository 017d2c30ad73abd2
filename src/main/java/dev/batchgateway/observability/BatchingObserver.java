package dev.batchgateway.observability;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchTrigger;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.LaneId;
import dev.batchgateway.completion.SchedulerEvents;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.WorkerException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;

/**
 * Turns the scheduler's events into {@code gateway.*} metrics and one log line per batch. Everything here runs on the
 * scheduler's threads, so it only increments meters and never blocks.
 */
final class BatchingObserver implements SchedulerEvents {

    private static final Logger BATCH_LOG = LoggerFactory.getLogger("dev.batchgateway.batches");

    private final MeterRegistry meters;
    private final String worker;
    private final DistributionSummary batchSize;
    private final Map<BatchTrigger, Counter> batchesByTrigger = new EnumMap<>(BatchTrigger.class);
    private final Timer timeInQueue;
    /** By kind and model: the models are the configured ones (an unknown model is refused before it is queued). */
    private final Map<String, Counter> tokens = new ConcurrentHashMap<>();
    private final Map<String, Timer> workerLatency = new ConcurrentHashMap<>();
    private final Map<CompletionRejectedException.Reason, Counter> rejections = new EnumMap<>(CompletionRejectedException.Reason.class);
    private final Map<Long, BatchTrigger> triggers = new ConcurrentHashMap<>();
    /** By lane: the models are the configured ones, the tiers two. */
    private final Map<LaneId, Timer> timeInLane = new ConcurrentHashMap<>();
    private final Map<LaneId, Counter> blockedOnCapacity = new ConcurrentHashMap<>();
    private final Map<String, Counter> flexSeats = new ConcurrentHashMap<>();

    /**
     * @param worker the name the worker latency is tagged with (the worker's model)
     * @param largestBatch the configured batch size; the size histogram has one bucket per possible size
     * @param models the served models: each lane's meters exist from the start, at zero, so dashboards show them
     */
    BatchingObserver(MeterRegistry meters, String worker, int largestBatch, List<String> models) {
        this.meters = meters;
        this.worker = worker;
        this.batchSize = DistributionSummary.builder("gateway.batch.size")
                .description("Prompts per worker call")
                .baseUnit("requests")
                .serviceLevelObjectives(IntStream.rangeClosed(1, largestBatch).asDoubleStream().toArray())
                .register(meters);
        for (BatchTrigger trigger : BatchTrigger.values()) {
            batchesByTrigger.put(trigger, Counter.builder("gateway.batches")
                    .description("Batches sent to the worker, by why they left: full, max_wait or shutdown")
                    .tag("trigger", trigger.name().toLowerCase(Locale.ROOT))
                    .register(meters));
        }
        this.timeInQueue = Timer.builder("gateway.queue.time")
                .description("Time a request waited between arriving and leaving in a batch")
                .publishPercentileHistogram()
                .register(meters);
        tokens("prompt", worker);
        tokens("completion", worker);
        for (String model : models) {
            for (ServiceTier tier : ServiceTier.values()) {
                timeInLane(new LaneId(model, tier));
                blockedOnCapacity(new LaneId(model, tier), 0);
            }
            flexSeatsFilled(model, 0);
        }
        for (var reason : CompletionRejectedException.Reason.values()) {
            rejections.put(reason, Counter.builder("gateway.rejections")
                    // the same as the 429 series' by limit, counted at the web edge (web's RequestTracking)
                    .description("Requests turned away before they were queued: 503 by reason, 429 by the limit they were over or for flex beyond its half of the queue")
                    .tag("reason", reason.name().toLowerCase(Locale.ROOT))
                    .register(meters));
        }
    }

    private Counter tokens(String kind, String model) {
        return tokens.computeIfAbsent(kind + " " + model, key -> Counter.builder("gateway.tokens")
                .description("Tokens of served completions, as counted by the worker, by kind and model")
                .tag("kind", kind)
                .tag("model", model)
                .register(meters));
    }

    @Override
    public void rejected(CompletionRequest request, CompletionRejectedException reason) {
        rejections.get(reason.reason()).increment();
    }

    @Override
    public void batchDispatched(Batch batch, BatchTrigger trigger, int queued, int batchesInFlight) {
        batchSize.record(batch.size());
        batchesByTrigger.get(trigger).increment();
        triggers.put(batch.id(), trigger);
    }

    @Override
    public void batchFinished(Batch batch, Duration latency, RuntimeException failure) {
        String outcome = outcome(failure);
        String model = batch.parameters().model() != null ? batch.parameters().model() : worker;
        workerLatency.computeIfAbsent(model + " " + outcome, key -> Timer.builder("gateway.worker.latency")
                        .description("Duration of one worker call (one batch)")
                        .tag("worker", model)
                        .tag("outcome", outcome)
                        .publishPercentileHistogram()
                        .register(meters))
                .record(latency);
        BatchTrigger trigger = triggers.remove(batch.id());
        BATCH_LOG.atLevel(failure == null ? Level.INFO : Level.WARN)
                .addKeyValue("batch_id", batch.id())
                .addKeyValue("size", batch.size())
                .addKeyValue("trigger", trigger)
                .addKeyValue("worker", model)
                .addKeyValue("latency_ms", latency.toMillis())
                .addKeyValue("outcome", outcome)
                .log("batch finished: batch_id={} size={} trigger={} worker={} latency_ms={} outcome={}{}",
                        batch.id(), batch.size(), trigger, model, latency.toMillis(), outcome,
                        failure == null ? "" : " reason=\"" + failure.getMessage() + "\"");
    }

    @Override
    public void timeInQueue(Duration waited) {
        timeInQueue.record(waited);
    }

    @Override
    public void timeInLane(LaneId lane, Duration waited) {
        timeInLane(lane).record(waited);
    }

    private Timer timeInLane(LaneId lane) {
        return timeInLane.computeIfAbsent(lane, id -> Timer.builder("gateway.lane.queue.time")
                        .description("Time a request waited in its lane (model and service tier) between arriving and leaving in a batch, waiting for capacity included")
                        .tag("model", id.model())
                        .tag("tier", id.tier().wireName())
                        .publishPercentileHistogram()
                        .register(meters));
    }

    @Override
    public void blockedOnCapacity(LaneId lane) {
        blockedOnCapacity(lane, 1);
    }

    private void blockedOnCapacity(LaneId lane, int times) {
        blockedOnCapacity.computeIfAbsent(lane, id -> Counter.builder("gateway.lane.blocked")
                        .description("Times a ready batch of this lane found every batch slot of its model's workers taken and began to wait in its lane")
                        .tag("model", id.model())
                        .tag("tier", id.tier().wireName())
                        .register(meters))
                .increment(times);
    }

    @Override
    public void flexSeatsFilled(String model, int seats) {
        flexSeats.computeIfAbsent(model, name -> Counter.builder("gateway.flex.seats")
                        .description("Flex requests that rode in the empty seats of a default-tier batch")
                        .tag("model", name)
                        .register(meters))
                .increment(seats);
    }

    @Override
    public void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {
        if (completion != null) {
            String model = request.parameters().model() != null ? request.parameters().model() : worker;
            tokens("prompt", model).increment(completion.usage().promptTokens());
            tokens("completion", model).increment(completion.usage().completionTokens());
        }
    }

    private static String outcome(RuntimeException failure) {
        return switch (failure) {
            case null -> "ok";
            case WorkerException.Unavailable u -> "unavailable";
            case WorkerException.TimedOut t -> "timed_out";
            case WorkerException.BadAnswer b -> "bad_answer";
            case WorkerException.Rejected r -> "rejected";
            case WorkerException.Misconfigured m -> "misconfigured";
            default -> "failed";
        };
    }
}
