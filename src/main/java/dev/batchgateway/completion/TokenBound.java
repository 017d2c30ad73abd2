package dev.batchgateway.completion;

/**
 * An upper bound of the tokens a request can cost, known before any worker sees it: at most one token per UTF-8 byte
 * of its prompt (byte-level tokenizers), an allowance for special tokens and a chat's template, and its {@code
 * max_tokens}; an input to embed generates nothing, so its bytes and allowance only. Budgets reserve it at admission; computed from the text alone (no {@code /tokenize} call).
 */
public final class TokenBound {

    /** Tokens a text may need beside one per UTF-8 byte (byte-level tokenizers): BOS, EOS and other special tokens. */
    public static final int TEXT_ALLOWANCE = 16;
    /** Tokens a chat message may need beside its bytes: the template's role header and end-of-turn tokens. */
    public static final int MESSAGE_ALLOWANCE = 16;
    /** Tokens a chat template may add once: a default system prompt, the assistant's header. */
    public static final int CHAT_ALLOWANCE = 256;

    private TokenBound() {}

    /** The most tokens {@code request} can cost. */
    public static long of(CompletionRequest request) {
        long prompt = switch (request.prompt()) {
            case Prompt.Embedding embedding -> utf8Bytes(embedding.input()) + TEXT_ALLOWANCE;
            case Prompt.Text text -> utf8Bytes(text.text()) + TEXT_ALLOWANCE;
            case Prompt.Chat chat -> {
                long bytes = CHAT_ALLOWANCE;
                for (Prompt.Message message : chat.messages()) {
                    bytes += utf8Bytes(message.role()) + utf8Bytes(message.content()) + MESSAGE_ALLOWANCE;
                }
                yield bytes;
            }
        };
        // an embedding generates nothing
        return request.prompt() instanceof Prompt.Embedding ? prompt : prompt + request.parameters().maxTokens();
    }

    private static long utf8Bytes(String text) {
        long bytes = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < 0x80) {
                bytes += 1;
            } else if (c < 0x800) {
                bytes += 2;
            } else if (Character.isHighSurrogate(c)) {
                bytes += 4; // with its low surrogate, which adds nothing
            } else if (!Character.isLowSurrogate(c)) {
                bytes += 3;
            }
        }
        return bytes;
    }
}
