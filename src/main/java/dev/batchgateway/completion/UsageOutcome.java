package dev.batchgateway.completion;

/**
 * What became of a request whose tokens the worker generated, recorded with its usage row. Every one is billed: the
 * worker spent the tokens whatever the caller did meanwhile.
 */
public enum UsageOutcome {
    /** The caller got its completion. */
    SERVED,
    /** The caller left after its batch was sent (one prompt of a batched call cannot be aborted alone). */
    CLIENT_GONE,
    /** The caller's deadline passed after its batch was sent; it got 504. */
    DEADLINE,
    /** The worker's stream broke after text had reached the caller; billed what the worker had counted by then. */
    STREAM_FAILED;

    /** The word in {@code token_usage.outcome} and in the API: {@code served}, {@code client_gone}, … */
    public String word() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
