package dev.batchgateway.completion;

/** Why the worker stopped generating. */
public enum FinishReason {
    /** The model ended the text itself. */
    STOP,
    /** The text reached max tokens. */
    LENGTH,
    /** The worker did not say. */
    UNKNOWN
}
