package dev.batchgateway.completion;

/**
 * Whether the caller of a queued request is still there to take its answer.
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
}
