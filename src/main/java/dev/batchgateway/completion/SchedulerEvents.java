package dev.batchgateway.completion;

import java.time.Duration;
import java.util.List;

/**
 * What the scheduler reports while it works, for metrics and logs (budgets are settled through {@link Settlement}, which
 * must not lose a failure). Every method defaults to doing nothing.
 */
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

    /** A request of this lane waited this long between arriving and leaving in a batch (beside {@link #timeInQueue}). */
    default void timeInLane(LaneId lane, Duration waited) {}

    /**
     * A batch of this lane was ready and every slot of its model's workers was taken: it waits in its lane. Told once
     * each time the model's lanes start waiting, not again while they still wait.
     */
    default void blockedOnCapacity(LaneId lane) {}

    /** A default-tier batch of this model left with {@code seats} flex requests in its otherwise empty seats. */
    default void flexSeatsFilled(String model, int seats) {}

    /** A request ended with a completion ({@code failure} null) or a failure. */
    default void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {}

    /** Reports to each observer in turn; one that throws is logged and keeps no other from hearing of the event. */
    static SchedulerEvents all(List<? extends SchedulerEvents> observers) {
        List<SchedulerEvents> each = List.copyOf(observers);
        if (each.isEmpty()) {
            return NONE;
        }
        if (each.size() == 1) {
            return each.getFirst();
        }
        return new SchedulerEvents() {
            @Override
            public void rejected(CompletionRequest request, CompletionRejectedException reason) {
                each.forEach(observer -> report(() -> observer.rejected(request, reason)));
            }

            @Override
            public void batchDispatched(Batch batch, BatchTrigger trigger, int queued, int batchesInFlight) {
                each.forEach(observer -> report(() -> observer.batchDispatched(batch, trigger, queued, batchesInFlight)));
            }

            @Override
            public void batchFinished(Batch batch, Duration latency, RuntimeException failure) {
                each.forEach(observer -> report(() -> observer.batchFinished(batch, latency, failure)));
            }

            @Override
            public void timeInQueue(Duration waited) {
                each.forEach(observer -> report(() -> observer.timeInQueue(waited)));
            }

            @Override
            public void timeInLane(LaneId lane, Duration waited) {
                each.forEach(observer -> report(() -> observer.timeInLane(lane, waited)));
            }

            @Override
            public void blockedOnCapacity(LaneId lane) {
                each.forEach(observer -> report(() -> observer.blockedOnCapacity(lane)));
            }

            @Override
            public void flexSeatsFilled(String model, int seats) {
                each.forEach(observer -> report(() -> observer.flexSeatsFilled(model, seats)));
            }

            @Override
            public void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {
                each.forEach(observer -> report(() -> observer.requestFinished(request, completion, failure)));
            }

            private static void report(Runnable event) {
                try {
                    event.run();
                } catch (RuntimeException e) {
                    System.getLogger(SchedulerEvents.class.getName())
                            .log(System.Logger.Level.WARNING, "a scheduler observer failed; ignored", e);
                }
            }
        };
    }
}
