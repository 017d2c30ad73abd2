package dev.batchgateway.completion;

import java.time.Instant;
import java.util.Objects;
import java.util.UUID;

/** One served completion as it is billed: who, how many tokens, which model, when. */
public record UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt) {

    public UsageRecord {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(usage, "usage");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(servedAt, "servedAt");
    }
}
