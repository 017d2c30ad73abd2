package dev.batchgateway.completion;

import java.util.List;

/**
 * The names of the models the gateway serves, the default first: what a request may name, and what one without a model
 * is served by. Told by the workers' settings; read by the entry points and the key terms.
 */
public record ServedModels(List<String> names) {

    public ServedModels {
        names = List.copyOf(names);
        if (names.isEmpty()) {
            throw new IllegalArgumentException("the gateway serves at least one model");
        }
    }

    public String defaultModel() {
        return names.getFirst();
    }
}
