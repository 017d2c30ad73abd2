package dev.batchgateway.completion;

import java.time.Duration;
import java.util.Objects;

/** The gateway does not take the request now; the caller may try again after {@link #retryAfter()}. */
public final class CompletionRejectedException extends RuntimeException {

    /** Why the request was turned away. */
    public enum Reason {
        QUEUE_FULL("the queue is full"),
        SHUTTING_DOWN("the gateway is shutting down"),
        USAGE_BACKLOG("usage records cannot be written at the moment");

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
}
