package dev.batchgateway.completion;

import java.time.Duration;

/**
 * Whether the caller of a queued request is still there to take its answer, and since when it has been waiting.
 *
 * <p>The scheduler asks just before the request's batch leaves; a caller that has gone is dropped from the batch (its
 * future is cancelled), so the worker never spends tokens on an answer nobody reads. Implementations must answer
 * quickly and without blocking (the batch loop waits on them), and may answer {@code true} when they cannot tell.
 */
@FunctionalInterface
public interface CallerPresence {

    /** For callers that cannot be checked: assumed present until they cancel the future themselves. */
    CallerPresence ASSUMED = () -> true;

    /** @return false only when the caller has certainly gone */
    boolean stillWaiting();

    /**
     * How long ago the caller's request reached the gateway, asked once as the request is queued. Its batch's max-wait
     * and its deadline count from then, so the time spent reading and checking the request is part of its wait instead
     * of coming on top of it. Callers that cannot tell answer zero: the wait counts from the queue.
     */
    default Duration waitedBeforeQueue() {
        return Duration.ZERO;
    }
}
