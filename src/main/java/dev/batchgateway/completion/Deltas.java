package dev.batchgateway.completion;

/**
 * Where a streaming caller's text goes as its batch generates it: each piece once, in order, never empty, all of them
 * before the caller's future completes. Called on the worker's thread while it reads the batch's answer, so it must
 * not block: a caller that reads slowly buffers, it never holds up the other callers of its batch.
 */
@FunctionalInterface
public interface Deltas {

    /** A caller that waits for the whole completion. */
    Deltas NONE = delta -> {};

    void text(String delta);
}
