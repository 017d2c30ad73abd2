package dev.batchgateway.completion;

/** Why the worker stopped generating. */
public enum FinishReason {
    /** The model ended the text itself. */
    STOP,
    /** The text reached max tokens. */
    LENGTH,
    /** The worker aborted the generation (vLLM's {@code abort}); the text may be partial. */
    ABORT,
    /** The worker stopped a repeating text (vLLM's {@code repetition}). */
    REPETITION,
    /** The worker did not say. */
    UNKNOWN
}
