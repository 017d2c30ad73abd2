package dev.batchgateway.completion;

import java.util.List;
import java.util.Objects;

/**
 * Prompts that go to the worker in one call, all with the same parameters, and all of one kind: texts to continue
 * ({@link #prompts()}) or chats to answer ({@link #chats()}), since a worker completes the two through different
 * endpoints.
 */
public record Batch(long id, GenerationParameters parameters, List<String> prompts, List<Prompt.Chat> chats) {

    public Batch {
        Objects.requireNonNull(parameters, "parameters");
        prompts = List.copyOf(prompts);
        chats = List.copyOf(chats);
        if (prompts.isEmpty() == chats.isEmpty()) {
            throw new IllegalArgumentException("a batch holds at least one prompt, all texts or all chats");
        }
    }

    /** A batch of texts to continue. */
    public Batch(long id, GenerationParameters parameters, List<String> prompts) {
        this(id, parameters, prompts, List.of());
    }

    /** A batch of chats to answer. */
    public static Batch ofChats(long id, GenerationParameters parameters, List<Prompt.Chat> chats) {
        return new Batch(id, parameters, List.of(), chats);
    }

    public boolean isChat() {
        return !chats.isEmpty();
    }

    public int size() {
        return isChat() ? chats.size() : prompts.size();
    }
}
