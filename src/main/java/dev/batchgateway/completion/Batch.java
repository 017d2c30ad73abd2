package dev.batchgateway.completion;

import java.util.List;
import java.util.Objects;

/** Prompts that go to the worker in one call, all with the same parameters. */
public record Batch(long id, GenerationParameters parameters, List<String> prompts) {

    public Batch {
        Objects.requireNonNull(parameters, "parameters");
        prompts = List.copyOf(prompts);
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("a batch holds at least one prompt");
        }
    }

    public int size() {
        return prompts.size();
    }
}
