package dev.batchgateway.completion;

import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * What a caller asks of the model: a text to continue, a chat whose next assistant message is wanted, or a text to embed.
 */
public sealed interface Prompt {

    /** A text to continue, as vLLM's {@code /v1/completions} and Ollama's raw {@code /api/generate} take it. */
    record Text(String text) implements Prompt {
        public Text {
            if (text == null || text.isBlank()) {
                throw new IllegalArgumentException("a prompt must not be blank");
            }
        }
    }

    /**
     * A conversation, completed by the worker's chat endpoint with the model's own chat template (vLLM's
     * {@code /v1/chat/completions}, Ollama's {@code /api/chat}).
     */
    record Chat(List<Message> messages) implements Prompt {
        public Chat {
            messages = List.copyOf(messages);
            if (messages.isEmpty()) {
                throw new IllegalArgumentException("a chat holds at least one message");
            }
        }
    }

    /** One message of a chat: its author's role ({@code system}, {@code user} or {@code assistant}) and its text. */
    record Message(String role, String content) {
        public static final Set<String> ROLES = Set.of("system", "user", "assistant");

        public Message {
            if (!ROLES.contains(role)) {
                throw new IllegalArgumentException("a message's role is system, user or assistant, was " + role);
            }
            Objects.requireNonNull(content, "content");
        }
    }

    /**
     * A text whose embedding is wanted rather than a continuation: one input of {@code /v1/embeddings}, embedded by an
     * embedding model (vLLM's and llama.cpp's {@code /v1/embeddings}, Ollama's {@code /api/embed}), in {@code
     * dimensions} dimensions where the model can shorten its vectors, or null for the model's own.
     */
    record Embedding(String input, Integer dimensions) implements Prompt {
        public Embedding {
            if (input == null || input.isEmpty()) {
                throw new IllegalArgumentException("an input to embed must not be empty");
            }
            if (dimensions != null && dimensions < 1) {
                throw new IllegalArgumentException("dimensions must be at least 1, was " + dimensions);
            }
        }
    }
}
