package dev.batchgateway.completion;

import java.util.Objects;
import java.util.UUID;

/** One caller's prompt, identified by the request id its usage is recorded under. */
public record CompletionRequest(UUID requestId, long userId, Prompt prompt, GenerationParameters parameters) {

    public CompletionRequest {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(parameters, "parameters");
        if (userId < 1) {
            throw new IllegalArgumentException("user id must be at least 1, was " + userId);
        }
    }

    /** A request to continue a text. */
    public CompletionRequest(UUID requestId, long userId, String text, GenerationParameters parameters) {
        this(requestId, userId, new Prompt.Text(text), parameters);
    }
}
