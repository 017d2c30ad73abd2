package dev.batchgateway.observability;

import dev.batchgateway.GatewayProperties;
import dev.batchgateway.completion.Scheduler;
import dev.batchgateway.completion.SchedulerEvents;
import dev.batchgateway.completion.WorkerApi;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** Metrics and logs of the batching scheduler, through the domain's {@link SchedulerEvents} port. */
@Configuration(proxyBeanMethods = false)
class ObservabilityConfiguration {

    @Bean
    SchedulerEvents batchingObserver(MeterRegistry meters, WorkerApi worker, GatewayProperties properties) {
        return new BatchingObserver(meters, worker.model(), properties.batch().size());
    }

    /** Read when scraped, so they are never stale. */
    @Bean
    MeterBinder schedulerGauges(Scheduler scheduler) {
        return meters -> {
            Gauge.builder("gateway.queue.depth", scheduler, Scheduler::queued)
                    .description("Requests admitted and not yet sent to the worker")
                    .baseUnit("requests")
                    .register(meters);
            Gauge.builder("gateway.batches.in.flight", scheduler, Scheduler::batchesInFlight)
                    .description("Worker calls in progress")
                    .register(meters);
        };
    }
}
