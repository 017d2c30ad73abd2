package dev.batchgateway.completion;

import java.util.List;

/**
 * The names of the models the gateway serves, the default first: what a request may name, and what one without a model
 * is served by; and {@code batchesAtOnce}, the most worker calls in flight at once, all workers of every model together.
 * Told by the workers' settings; read by the entry points, the key terms and the metrics.
 */
public record ServedModels(List<String> names, int batchesAtOnce) {

    public ServedModels {
        names = List.copyOf(names);
        if (batchesAtOnce < 1) {
            throw new IllegalArgumentException("the workers take at least one batch at once, was " + batchesAtOnce);
        }
        if (names.isEmpty()) {
            throw new IllegalArgumentException("the gateway serves at least one model");
        }
    }

    public String defaultModel() {
        return names.getFirst();
    }
}
