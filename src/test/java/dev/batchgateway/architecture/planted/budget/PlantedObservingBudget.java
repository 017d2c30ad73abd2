package dev.batchgateway.architecture.planted.budget;

import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.SchedulerEvents;

/** Budgets that listen on the observer bus on purpose, used by ArchitectureTest. */
public class PlantedObservingBudget implements SchedulerEvents {

    @Override
    public void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {}
}
