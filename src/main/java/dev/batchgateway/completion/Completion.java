package dev.batchgateway.completion;

import java.util.Objects;
import java.util.UUID;

/** What one caller gets back: its own text and the tokens it is billed for. */
public record Completion(UUID requestId, String text, TokenUsage usage, FinishReason finishReason) {

    public Completion {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(usage, "usage");
        Objects.requireNonNull(finishReason, "finishReason");
    }
}
