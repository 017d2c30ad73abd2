package dev.batchgateway.completion;

/** What requests must share to share a batch: their parameters (the model among them), and whether they are texts or chats. */
record BatchKey(GenerationParameters parameters, boolean chat) {

    static BatchKey of(CompletionRequest request) {
        return new BatchKey(request.parameters(), request.prompt() instanceof Prompt.Chat);
    }
}
