package dev.batchgateway.completion;

import java.util.List;
import java.util.Objects;

/**
 * Prompts that go to the worker in one call, all with the same parameters, and all of one kind: texts to continue
 * ({@link #prompts()}), chats to answer ({@link #chats()}) or inputs to embed ({@link #embeddings()}, all in the same
 * dimensions), since a worker serves each kind through its own endpoint.
 */
public record Batch(
        long id, GenerationParameters parameters, List<String> prompts, List<Prompt.Chat> chats, List<Prompt.Embedding> embeddings) {

    public Batch {
        Objects.requireNonNull(parameters, "parameters");
        prompts = List.copyOf(prompts);
        chats = List.copyOf(chats);
        embeddings = List.copyOf(embeddings);
        int kinds = (prompts.isEmpty() ? 0 : 1) + (chats.isEmpty() ? 0 : 1) + (embeddings.isEmpty() ? 0 : 1);
        if (kinds != 1) {
            throw new IllegalArgumentException("a batch holds at least one prompt, all texts, all chats or all inputs to embed");
        }
        if (embeddings.stream().map(Prompt.Embedding::dimensions).distinct().count() > 1) {
            throw new IllegalArgumentException("the inputs of a batch are embedded in the same dimensions");
        }
    }

    /** A batch of texts to continue. */
    public Batch(long id, GenerationParameters parameters, List<String> prompts) {
        this(id, parameters, prompts, List.of(), List.of());
    }

    /** A batch of chats to answer. */
    public static Batch ofChats(long id, GenerationParameters parameters, List<Prompt.Chat> chats) {
        return new Batch(id, parameters, List.of(), chats, List.of());
    }

    /** A batch of inputs to embed, all in the same dimensions. */
    public static Batch ofEmbeddings(long id, GenerationParameters parameters, List<Prompt.Embedding> embeddings) {
        return new Batch(id, parameters, List.of(), List.of(), embeddings);
    }

    public boolean isChat() {
        return !chats.isEmpty();
    }

    public boolean isEmbedding() {
        return !embeddings.isEmpty();
    }

    /** The dimensions every input of a batch of embeddings is asked in; null for the model's own (and for other batches). */
    public Integer dimensions() {
        return isEmbedding() ? embeddings.getFirst().dimensions() : null;
    }

    /** The inputs of a batch of embeddings, in order. */
    public List<String> inputs() {
        return embeddings.stream().map(Prompt.Embedding::input).toList();
    }

    public int size() {
        return isChat() ? chats.size() : isEmbedding() ? embeddings.size() : prompts.size();
    }
}
