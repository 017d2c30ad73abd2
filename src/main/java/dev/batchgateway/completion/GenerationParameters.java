package dev.batchgateway.completion;

import java.util.List;
import java.util.Objects;

/**
 * How a prompt is to be completed, and by which model. Only requests with equal parameters share a batch, since one
 * worker call carries one set of them. A sampling setting that is null (or no stop sequences) leaves the worker's own
 * default.
 *
 * @param model the model to complete it with; null for the worker's default model
 * @param maxTokens the most tokens to generate
 * @param temperature 0 to 2, or null
 * @param topP above 0 and at most 1, or null
 * @param stop up to four sequences at which generation stops
 * @param seed for reproducible sampling, or null
 */
public record GenerationParameters(
        String model, int maxTokens, Double temperature, Double topP, List<String> stop, Long seed) {

    /** The most stop sequences one request may give (OpenAI's limit). */
    public static final int MAX_STOP_SEQUENCES = 4;

    public GenerationParameters {
        if (model != null && model.isBlank()) {
            throw new IllegalArgumentException("a model name must not be blank");
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("max tokens must be at least 1, was " + maxTokens);
        }
        if (temperature != null && !(temperature >= 0 && temperature <= 2)) {
            throw new IllegalArgumentException("temperature must be between 0 and 2, was " + temperature);
        }
        if (topP != null && !(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be above 0 and at most 1, was " + topP);
        }
        stop = List.copyOf(Objects.requireNonNull(stop, "stop"));
        if (stop.size() > MAX_STOP_SEQUENCES || stop.stream().anyMatch(String::isEmpty)) {
            throw new IllegalArgumentException("at most " + MAX_STOP_SEQUENCES + " non-empty stop sequences, was " + stop);
        }
    }

    /** The default model, and only a limit on the length: every sampling setting is the worker's default. */
    public GenerationParameters(int maxTokens) {
        this(null, maxTokens, null, null, List.of(), null);
    }

    /**
     * The parameters of an embedding: only its model. An embedding generates nothing; its {@code maxTokens} is the
     * least there is, never sent to a worker and never reserved ({@link TokenBound}).
     */
    public static GenerationParameters embedding(String model) {
        return new GenerationParameters(model, 1, null, null, List.of(), null);
    }
}
