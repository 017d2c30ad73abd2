package dev.batchgateway.completion;

import java.util.Objects;
import java.util.UUID;

/**
 * What one caller gets back: its own text and the tokens it is billed for; for an input to embed, its vector instead
 * ({@code embedding}; null for a completion), with an empty text.
 */
public record Completion(UUID requestId, String text, TokenUsage usage, FinishReason finishReason, float[] embedding) {

    public Completion {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(usage, "usage");
        Objects.requireNonNull(finishReason, "finishReason");
    }

    /** A completion: text generated. */
    public Completion(UUID requestId, String text, TokenUsage usage, FinishReason finishReason) {
        this(requestId, text, usage, finishReason, null);
    }

    /** An input embedded: its vector, billed its prompt tokens. */
    public static Completion embedded(UUID requestId, float[] embedding, TokenUsage usage) {
        return new Completion(requestId, "", usage, FinishReason.STOP, Objects.requireNonNull(embedding, "embedding"));
    }
}
