package dev.batchgateway.budget;

import dev.batchgateway.completion.TokenBound;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;

/**
 * A request would go beyond a limit of its user, or of the key it was made with: it is refused before it reaches the
 * worker, and costs nothing.
 *
 * @param window the window whose limit it is (when several refuse it, the one that has room last)
 * @param limit that window's limit
 * @param remaining what a request could get of it now: what nobody holds, less than {@code requested}
 * @param requested what the request reserves of it: one request, or an upper bound of its tokens
 * @param resetsAt when the window ends and a new one begins
 * @param retryAfter when the window is expected to have room for the request again
 * @param ofKey whether the limit is the key's own (else the user's)
 * @param reserved of a token limit: what the {@code requested} tokens are made of, summed over the call's prompts
 * @param prompts how many prompts the call holds (each with the same {@code max_tokens})
 */
public final class LimitExceededException extends RuntimeException {

    private final Window window;
    private final long limit;
    private final long remaining;
    private final long requested;
    private final Instant resetsAt;
    private final Duration retryAfter;
    private final boolean ofKey;
    private final TokenBound.Parts reserved;

    /**
     * @param soon whether room may come back before the window ends: part of the limit is reserved by requests in
     *     flight or held by other instances, and not billed yet
     */
    public LimitExceededException(Window window, long limit, long remaining, long requested, Instant resetsAt,
            Duration retryAfter, boolean soon, boolean ofKey) {
        this(window, limit, remaining, requested, resetsAt, retryAfter, soon, ofKey, null, 1);
    }

    /**
     * @param soon whether room may come back before the window ends: part of the limit is reserved by requests in
     *     flight or held by other instances, and not billed yet
     * @param reserved what a token limit's {@code requested} is made of, or null
     * @param prompts how many prompts share {@code reserved}
     */
    public LimitExceededException(Window window, long limit, long remaining, long requested, Instant resetsAt,
            Duration retryAfter, boolean soon, boolean ofKey, TokenBound.Parts reserved, int prompts) {
        super((ofKey ? "this key's " : "") + message(window, limit, remaining, requested, resetsAt, retryAfter, soon,
                        reserved, prompts), null, false, false);
        this.ofKey = ofKey;
        this.window = Objects.requireNonNull(window, "window");
        this.limit = limit;
        this.remaining = remaining;
        this.requested = requested;
        this.resetsAt = Objects.requireNonNull(resetsAt, "resetsAt");
        this.retryAfter = Objects.requireNonNull(retryAfter, "retryAfter");
        this.reserved = window.countsRequests() ? null : reserved;
    }

    private static String message(Window window, long limit, long remaining, long requested, Instant resetsAt,
            Duration retryAfter, boolean soon, TokenBound.Parts reserved, int prompts) {
        String unit = window.countsRequests() ? "requests" : "tokens";
        String later = soon ? "try again in " + retryAfter.toSeconds() + " s" : "try again after " + resetsAt;
        String standing = window.limitName() + " is " + limit + ": " + remaining + " " + unit
                + (soon ? " free now, the rest billed or held by requests in flight" : " remain until " + resetsAt);
        if (window.countsRequests()) {
            return standing + (soon ? ": " + later : "");
        }
        if (reserved == null) {
            return standing + "; this request reserves " + requested + " tokens: " + later;
        }
        // the prompts' part is fixed; max_tokens, the same for each prompt, is what the caller can change
        long fits = (remaining - reserved.prompt()) / Math.max(1, prompts);
        String each = prompts > 1 ? " for each of its " + prompts + " prompts" : "";
        return standing + "; this request reserves " + requested + " tokens: " + (prompts > 1 ? "its prompts' " : "its prompt's ")
                + reserved.promptBytes() + " UTF-8 bytes (at most a token each) + " + reserved.allowance()
                + " allowed for special tokens and any chat template + max_tokens " + reserved.maxTokens() / Math.max(1, prompts) + each
                + (fits >= 1
                        ? ": max_tokens ≤ " + fits + " would fit" + each + ", or " + later
                        : ": no max_tokens would fit beside " + (prompts > 1 ? "these prompts" : "this prompt") + "; shorten it, or " + later);
    }

    public Window window() {
        return window;
    }

    public long limit() {
        return limit;
    }

    public long remaining() {
        return remaining;
    }

    public long requested() {
        return requested;
    }

    public Instant resetsAt() {
        return resetsAt;
    }

    public Duration retryAfter() {
        return retryAfter;
    }

    /** What the reserved tokens are made of, for a token limit; null for the requests per minute. */
    public TokenBound.Parts reserved() {
        return reserved;
    }

    /** Whose limit it is: {@code key} (the key's own limits) or {@code user}. */
    public String scope() {
        return ofKey ? "key" : "user";
    }
}
