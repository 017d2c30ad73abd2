package dev.batchgateway.completion;

import java.time.Duration;

/** What the scheduler reports while it works, for metrics and logs. Every method defaults to doing nothing. */
public interface SchedulerEvents {

    SchedulerEvents NONE = new SchedulerEvents() {};

    /** A request was turned away before it was queued. */
    default void rejected(CompletionRequest request, CompletionRejectedException reason) {}

    /** A batch was handed to the worker. */
    default void batchDispatched(Batch batch, BatchTrigger trigger, int queued, int batchesInFlight) {}

    /** The worker call for a batch ended; {@code failure} is null when it answered. */
    default void batchFinished(Batch batch, Duration latency, RuntimeException failure) {}

    /** A request waited this long between arriving and leaving in a batch. */
    default void timeInQueue(Duration waited) {}

    /** A request ended with a completion ({@code failure} null) or a failure. */
    default void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {}
}
