package dev.batchgateway.architecture.planted.observability;

import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.SchedulerEvents;
import java.util.concurrent.atomic.AtomicLong;

/** An observer that only counts, as an observer should: ArchitectureTest shows the settlement rule lets it be. */
public class PlantedMetricsObserver implements SchedulerEvents {

    private final AtomicLong rejected = new AtomicLong();

    @Override
    public void rejected(CompletionRequest request, CompletionRejectedException reason) {
        rejected.incrementAndGet();
    }
}
