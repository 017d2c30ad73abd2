package dev.batchgateway.completion;

/**
 * An upper bound of the tokens a request can cost, known before any worker sees it, computed from the text alone (no
 * {@code /tokenize} call); budgets reserve it at admission, and the fair share weighs requests by it.
 *
 * <p>It is the sum of: the prompt's UTF-8 bytes (no tokenizer makes more than one token of a byte: byte-level BPE
 * falls back to single bytes, SentencePiece to byte tokens), {@value #TEXT_ALLOWANCE} tokens for a text's special
 * tokens (BOS, EOS, a leading space), for a chat the {@link ChatTemplate} of its model (per conversation, and per
 * message beside its role's bytes), and its {@code max_tokens}; an input to embed
 * generates nothing, so its bytes and a text's allowance only. docs/budgets.md says where the numbers come from.
 */
public final class TokenBound {

    /** Tokens a text may need beside one per UTF-8 byte (byte-level tokenizers): BOS, EOS and other special tokens. */
    public static final int TEXT_ALLOWANCE = 16;

    private TokenBound() {}

    /**
     * What a request's bound is made of, for the messages that name it (a 429 says what would fit).
     *
     * @param promptBytes the UTF-8 bytes of the prompt's text (of a chat: every message's role and content)
     * @param allowance the tokens allowed beside them: a text's special tokens, or a chat's template
     * @param maxTokens the request's {@code max_tokens}
     */
    public record Parts(long promptBytes, long allowance, long maxTokens) {

        /** The bound: all three together. */
        public long total() {
            return promptBytes + allowance + maxTokens;
        }

        /** The prompt's part: everything but {@code max_tokens}. */
        public long prompt() {
            return promptBytes + allowance;
        }

        /** The parts of several requests, summed. */
        public Parts plus(Parts other) {
            return new Parts(promptBytes + other.promptBytes, allowance + other.allowance, maxTokens + other.maxTokens);
        }
    }

    /** The most tokens {@code request} can cost. */
    public static long of(CompletionRequest request) {
        // an embedding generates nothing
        return request.prompt() instanceof Prompt.Embedding
                ? prompt(request.prompt())
                : prompt(request.prompt()) + request.parameters().maxTokens();
    }

    /** What the bound of {@code request} is made of. */
    public static Parts parts(CompletionRequest request) {
        return switch (request.prompt()) {
            case Prompt.Embedding embedding -> new Parts(utf8Bytes(embedding.input()), TEXT_ALLOWANCE, 0);
            case Prompt.Text text -> new Parts(utf8Bytes(text.text()), TEXT_ALLOWANCE, request.parameters().maxTokens());
            case Prompt.Chat chat -> {
                long bytes = 0;
                for (Prompt.Message message : chat.messages()) {
                    bytes += utf8Bytes(message.role()) + utf8Bytes(message.content());
                }
                yield new Parts(bytes, allowance(chat), request.parameters().maxTokens());
            }
        };
    }

    /** The most tokens {@code prompt} can take of a model's context, before anything is generated. */
    public static long prompt(Prompt prompt) {
        return switch (prompt) {
            case Prompt.Embedding embedding -> utf8Bytes(embedding.input()) + TEXT_ALLOWANCE;
            case Prompt.Text text -> utf8Bytes(text.text()) + TEXT_ALLOWANCE;
            case Prompt.Chat chat -> {
                long tokens = allowance(chat);
                for (Prompt.Message message : chat.messages()) {
                    tokens += utf8Bytes(message.role()) + utf8Bytes(message.content());
                }
                yield tokens;
            }
        };
    }

    private static long allowance(Prompt.Chat chat) {
        return chat.template().perConversation() + (long) chat.template().perMessage() * chat.messages().size();
    }

    static long utf8Bytes(String text) {
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
