package dev.batchgateway.completion;

import java.util.Objects;
import java.util.UUID;

/**
 * One caller's prompt, identified by the request id its usage is recorded under, in the service tier it runs in.
 */
public record CompletionRequest(
        UUID requestId, long userId, Prompt prompt, GenerationParameters parameters, ServiceTier serviceTier) {

    public CompletionRequest {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(parameters, "parameters");
        Objects.requireNonNull(serviceTier, "serviceTier");
        if (userId < 1) {
            throw new IllegalArgumentException("user id must be at least 1, was " + userId);
        }
    }

    /** A request in the default tier. */
    public CompletionRequest(UUID requestId, long userId, Prompt prompt, GenerationParameters parameters) {
        this(requestId, userId, prompt, parameters, ServiceTier.DEFAULT);
    }

    /** A request to continue a text, in the default tier. */
    public CompletionRequest(UUID requestId, long userId, String text, GenerationParameters parameters) {
        this(requestId, userId, new Prompt.Text(text), parameters);
    }
}
