package dev.batchgateway.completion;

/**
 * What requests must share to share a batch: their parameters (the model among them), their kind (texts, chats or
 * inputs to embed, each its own endpoint) and, for embeddings, the dimensions asked for.
 */
record BatchKey(GenerationParameters parameters, Kind kind, Integer dimensions) {

    enum Kind { TEXT, CHAT, EMBEDDING }

    static BatchKey of(CompletionRequest request) {
        return switch (request.prompt()) {
            case Prompt.Text text -> new BatchKey(request.parameters(), Kind.TEXT, null);
            case Prompt.Chat chat -> new BatchKey(request.parameters(), Kind.CHAT, null);
            case Prompt.Embedding embedding -> new BatchKey(request.parameters(), Kind.EMBEDDING, embedding.dimensions());
        };
    }

    /** The most requests of this key in one batch: embeddings have a batch size of their own. */
    int batchSize(SchedulerPolicy policy) {
        return kind == Kind.EMBEDDING ? policy.embeddingsBatchSize() : policy.batchSize();
    }
}
