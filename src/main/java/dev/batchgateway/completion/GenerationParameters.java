package dev.batchgateway.completion;

/** How a prompt is to be completed. Only requests with equal parameters share a batch. */
public record GenerationParameters(int maxTokens) {

    public GenerationParameters {
        if (maxTokens < 1) {
            throw new IllegalArgumentException("max tokens must be at least 1, was " + maxTokens);
        }
    }
}
