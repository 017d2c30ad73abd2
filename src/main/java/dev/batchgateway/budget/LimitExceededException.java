package dev.batchgateway.budget;

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
 */
public final class LimitExceededException extends RuntimeException {

    private final Window window;
    private final long limit;
    private final long remaining;
    private final long requested;
    private final Instant resetsAt;
    private final Duration retryAfter;
    private final boolean ofKey;

    /**
     * @param soon whether room may come back before the window ends: part of the limit is reserved by requests in
     *     flight or held by other instances, and not billed yet
     */
    public LimitExceededException(Window window, long limit, long remaining, long requested, Instant resetsAt,
            Duration retryAfter, boolean soon, boolean ofKey) {
        super((ofKey ? "this key's " : "") + message(window, limit, remaining, requested, resetsAt, retryAfter, soon),
                null, false, false);
        this.ofKey = ofKey;
        this.window = Objects.requireNonNull(window, "window");
        this.limit = limit;
        this.remaining = remaining;
        this.requested = requested;
        this.resetsAt = Objects.requireNonNull(resetsAt, "resetsAt");
        this.retryAfter = Objects.requireNonNull(retryAfter, "retryAfter");
    }

    private static String message(
            Window window, long limit, long remaining, long requested, Instant resetsAt, Duration retryAfter, boolean soon) {
        String unit = window.countsRequests() ? "requests" : "tokens";
        String cost = window.countsRequests()
                ? ""
                : "; this request may cost up to " + requested
                        + " tokens (its prompt's UTF-8 bytes and an allowance for special tokens, plus max_tokens)";
        if (soon) {
            return window.limitName() + " is " + limit + ": " + remaining + " " + unit + " free now, the rest billed or held by"
                    + " requests in flight" + cost + ": try again in " + retryAfter.toSeconds() + " s";
        }
        return window.limitName() + " is " + limit + ": " + remaining + " " + unit + " remain until " + resetsAt + cost
                + (window.countsRequests() ? "" : ": ask for fewer max_tokens, or try again after " + resetsAt);
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

    /** Whose limit it is: {@code key} (the key's own limits) or {@code user}. */
    public String scope() {
        return ofKey ? "key" : "user";
    }
}
