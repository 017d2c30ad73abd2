package dev.batchgateway.observability;

import dev.batchgateway.completion.LaneId;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.Scheduler;
import dev.batchgateway.completion.SchedulerPolicy;
import dev.batchgateway.completion.SchedulerEvents;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.WorkerApi;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** Metrics and logs of the batching scheduler, through the domain's {@link SchedulerEvents} port. */
@Configuration(proxyBeanMethods = false)
class ObservabilityConfiguration {

    @Bean
    SchedulerEvents batchingObserver(MeterRegistry meters, WorkerApi worker, SchedulerPolicy policy, ServedModels models) {
        return new BatchingObserver(meters, worker.model(), policy.batchSize(), models.names());
    }

    /** Read when scraped, so they are never stale. */
    @Bean
    MeterBinder schedulerGauges(Scheduler scheduler, SchedulerPolicy policy, ServedModels models) {
        return meters -> {
            Gauge.builder("gateway.queue.depth", scheduler, Scheduler::queued)
                    .description("Requests admitted and not yet sent to the worker")
                    .baseUnit("requests")
                    .register(meters);
            for (String model : models.names()) {
                for (ServiceTier tier : ServiceTier.values()) {
                    var lane = new LaneId(model, tier);
                    Gauge.builder("gateway.lane.depth", scheduler, queued -> queued.queued(lane))
                            .description("Requests admitted and not yet sent to the worker, by lane: model and service tier")
                            .baseUnit("requests")
                            .tag("model", model)
                            .tag("tier", tier.wireName())
                            .register(meters);
                }
            }
            Gauge.builder("gateway.batches.in.flight", scheduler, Scheduler::batchesInFlight)
                    .description("Worker calls in progress")
                    .register(meters);
            FunctionCounter.builder("gateway.settlement.failures", scheduler, Scheduler::settlementFailures)
                    .description("Budget settlements that threw: each may leave a reservation held until its window ends")
                    .register(meters);
            // the limits beside their gauges, so dashboards and alerts compare against the configured value
            Gauge.builder("gateway.queue.capacity", policy, SchedulerPolicy::queueCapacity)
                    .description("Requests the queue admits before it answers 503 (GATEWAY_QUEUE_CAPACITY)")
                    .baseUnit("requests")
                    .register(meters);
            Gauge.builder("gateway.batches.in.flight.limit", models, ServedModels::batchesAtOnce)
                    .description("Most worker calls in progress at once, all workers of every model together")
                    .register(meters);
            Gauge.builder("gateway.request.timeout", policy, p -> p.requestTimeout().toNanos() / 1e9)
                    .description("A request's deadline, queue plus worker call (GATEWAY_REQUEST_TIMEOUT)")
                    .baseUnit("seconds")
                    .register(meters);
            Gauge.builder("gateway.batch.max.wait", policy, p -> p.maxWait().toNanos() / 1e9)
                    .description("How long a partial batch waits for company (GATEWAY_BATCH_MAX_WAIT)")
                    .baseUnit("seconds")
                    .register(meters);
        };
    }
}
