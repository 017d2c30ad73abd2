package dev.batchgateway.completion;

import java.util.List;
import java.util.Set;

/**
 * The names of the models the gateway serves, the default first: what a request may name, and what one without a model
 * is served by; {@code batchesAtOnce}, the most worker calls in flight at once, all workers of every model together;
 * and {@code embeddingModels}, those of them that embed ({@code /v1/embeddings}) rather than generate. Told by the
 * workers' settings; read by the entry points, the key terms and the metrics.
 */
public record ServedModels(List<String> names, int batchesAtOnce, Set<String> embeddingModels) {

    public ServedModels {
        names = List.copyOf(names);
        embeddingModels = Set.copyOf(embeddingModels);
        if (batchesAtOnce < 1) {
            throw new IllegalArgumentException("the workers take at least one batch at once, was " + batchesAtOnce);
        }
        if (names.isEmpty()) {
            throw new IllegalArgumentException("the gateway serves at least one model");
        }
        if (!names.containsAll(embeddingModels)) {
            throw new IllegalArgumentException("embedding models " + embeddingModels + " are not all among " + names);
        }
    }

    /** Models that all generate. */
    public ServedModels(List<String> names, int batchesAtOnce) {
        this(names, batchesAtOnce, Set.of());
    }

    public String defaultModel() {
        return names.getFirst();
    }

    /** Whether {@code model} is an embedding model: it answers {@code /v1/embeddings} and nothing else. */
    public boolean embeds(String model) {
        return embeddingModels.contains(model);
    }
}
