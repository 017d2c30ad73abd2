package dev.batchgateway.architecture.planted.observability;

import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.SchedulerEvents;
import dev.batchgateway.completion.Settlement;

/** Settles budgets from the observer bus on purpose (a failure there is logged and dropped), used by ArchitectureTest. */
public class PlantedSettlingObserver implements SchedulerEvents {

    private final Settlement budgets;

    public PlantedSettlingObserver(Settlement budgets) {
        this.budgets = budgets;
    }

    @Override
    public void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {
        budgets.settled(request, completion == null ? null : completion.usage());
    }
}
