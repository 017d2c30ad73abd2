package dev.batchgateway.completion;

import java.time.Duration;
import java.util.List;

/**
 * What the scheduler reports while it works, for metrics, logs and budgets. Every method defaults to doing nothing.
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

    /** A request ended with a completion ({@code failure} null) or a failure. */
    default void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {}

    /**
     * What a request costs is final: {@code billed} is the usage recorded for it in the ledger, or null when nothing
     * is billed (it ended before its batch left, or the worker did not generate it). Reported exactly once for every
     * request {@code submit} took, after its future completed: for a request sent to the worker, when its batch
     * ended, since a request whose caller left or whose deadline passed after dispatch is billed all the same.
     */
    default void settled(CompletionRequest request, TokenUsage billed) {}

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
            public void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {
                each.forEach(observer -> report(() -> observer.requestFinished(request, completion, failure)));
            }

            @Override
            public void settled(CompletionRequest request, TokenUsage billed) {
                each.forEach(observer -> report(() -> observer.settled(request, billed)));
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
