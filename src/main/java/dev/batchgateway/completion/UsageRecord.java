package dev.batchgateway.completion;

import java.time.Instant;
import java.util.Objects;
import java.util.UUID;

/** One completion as it is billed: who, how many tokens, which model, when, and what became of the request. */
public record UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt, UsageOutcome outcome) {

    public UsageRecord {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(usage, "usage");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(servedAt, "servedAt");
        Objects.requireNonNull(outcome, "outcome");
    }

    /** A completion its caller got. */
    public UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt) {
        this(requestId, userId, usage, model, servedAt, UsageOutcome.SERVED);
    }
}
