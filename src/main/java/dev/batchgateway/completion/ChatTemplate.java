package dev.batchgateway.completion;

import java.util.List;
import java.util.Optional;

/**
 * The most tokens a model's chat template adds to a conversation, beside the messages' own roles and text: once per
 * conversation (a begin-of-text token, a default system prompt, the assistant's header that the answer follows) and
 * once per message (its role header and end-of-turn tokens). Part of a chat's {@link TokenBound}; measured per kind of
 * server, as docs/budgets.md says where each number comes from.
 *
 * @param perConversation tokens the template adds once
 * @param perMessage tokens the template adds around each message, its role's own bytes aside
 */
public record ChatTemplate(int perConversation, int perMessage) {

    /**
     * A model's template as the gateway assumes it when its server cannot be asked what it adds: room for the longest
     * built-in system prompt of the common templates counted a token per byte (gpt-oss's, about 240 bytes), and 16 a
     * message, four times the special tokens of the common wrappers (ChatML, Llama 3, Gemma: 4 each). docs/budgets.md.
     */
    public static final ChatTemplate UNMEASURED = new ChatTemplate(256, 16);

    /**
     * The conversations a server is asked to template to measure what its template adds: one user message; a system
     * and a user message; user, assistant, user. Each message's text is one letter.
     */
    public static final List<List<Prompt.Message>> PROBES = List.of(
            List.of(new Prompt.Message("user", "a")),
            List.of(new Prompt.Message("system", "a"), new Prompt.Message("user", "a")),
            List.of(new Prompt.Message("user", "a"), new Prompt.Message("assistant", "a"), new Prompt.Message("user", "a")));

    public ChatTemplate {
        if (perConversation < 0 || perMessage < 0) {
            throw new IllegalArgumentException("a chat template adds no negative tokens, was " + perConversation + ", " + perMessage);
        }
    }

    /**
     * The template that bounds what a server counted for the {@link #PROBES} (their tokens, or an upper bound of them):
     * per message, the most that a second message added, or half what two more added; per conversation, the rest of
     * the first. Each message's role and text count again in a {@link TokenBound} (a byte a token), so a conversation
     * the size of a probe is bounded with room to spare. Empty when a count is missing (negative), except the second
     * probe's: a template may refuse a system message (Gemma's).
     */
    public static Optional<ChatTemplate> measured(int[] counts) {
        if (counts.length != PROBES.size() || counts[0] < 0 || counts[2] < 0) {
            return Optional.empty();
        }
        int perMessage = Math.max(Math.max(0, counts[1] - counts[0]), (Math.max(0, counts[2] - counts[0]) + 1) / 2);
        return Optional.of(new ChatTemplate(Math.max(0, counts[0] - perMessage), perMessage));
    }

    /** The larger allowance of the two, part by part: a template that fits both. */
    public ChatTemplate widest(ChatTemplate other) {
        return new ChatTemplate(Math.max(perConversation, other.perConversation), Math.max(perMessage, other.perMessage));
    }
}
