package dev.batchgateway.completion;

import java.time.Duration;
import java.util.Objects;

/** The gateway does not take the request now; the caller may try again after {@link #retryAfter()}. */
public final class CompletionRejectedException extends RuntimeException {

    /** Why the request was turned away. */
    public enum Reason {
        QUEUE_FULL("the queue is full"),
        /** Flex requests hold half the queue, their most: the caller should slow down (429), not the gateway (503). */
        FLEX_QUEUE_FULL("the flex tier's half of the queue is full"),
        SHUTTING_DOWN("the gateway is shutting down"),
        USAGE_BACKLOG("usage records cannot be written at the moment"),
        /**
         * The caller's user has a token limit and its usage cannot be charged to a live budget hold now (the database
         * is out of reach from this instance): the answer is withheld and nothing is billed, rather than bill beyond
         * the limit.
         */
        USAGE_UNACCOUNTED("usage of a user with limits cannot be accounted at the moment: nothing was billed");

        private final String description;

        Reason(String description) {
            this.description = description;
        }

        public String description() {
            return description;
        }
    }

    private final Reason reason;
    private final Duration retryAfter;

    public CompletionRejectedException(Reason reason, Duration retryAfter) {
        super(reason.description());
        this.reason = Objects.requireNonNull(reason, "reason");
        this.retryAfter = Objects.requireNonNull(retryAfter, "retryAfter");
    }

    public Reason reason() {
        return reason;
    }

    public Duration retryAfter() {
        return retryAfter;
    }

    /** Whether the caller sent more than its share (429) rather than the gateway being unable to take it (503). */
    public boolean tooManyRequests() {
        return reason == Reason.FLEX_QUEUE_FULL;
    }
}
