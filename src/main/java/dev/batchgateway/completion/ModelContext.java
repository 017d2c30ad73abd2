package dev.batchgateway.completion;

import java.util.Objects;
import java.util.OptionalInt;

/**
 * What a model's servers say of its context, learned when they are probed: how many tokens a prompt and its answer
 * may take together ({@code max_model_len} of vLLM, {@code n_ctx} of llama.cpp, Ollama's {@code context_length}), whether
 * a server refuses a request whose prompt and {@code max_tokens} go beyond it (vLLM, SGLang, TGI) rather than stop
 * generating there (llama.cpp, Ollama), and the allowance of the model's chat template.
 *
 * @param tokens the context in tokens; empty while no server has said
 * @param refusesOverflow whether a server answers 400 when prompt + {@code max_tokens} exceed the context
 * @param template what the chat template adds to a conversation
 */
public record ModelContext(OptionalInt tokens, boolean refusesOverflow, ChatTemplate template) {

    /** What is known of a model none of whose servers has answered a probe yet. */
    public static final ModelContext UNREPORTED = new ModelContext(OptionalInt.empty(), false, ChatTemplate.UNMEASURED);

    public ModelContext {
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(template, "template");
        if (tokens.isPresent() && tokens.getAsInt() < 1) {
            throw new IllegalArgumentException("a context holds at least one token, was " + tokens.getAsInt());
        }
    }

    /** A context of {@code tokens}, as a server reported it. */
    public static ModelContext of(int tokens, boolean refusesOverflow, ChatTemplate template) {
        return new ModelContext(OptionalInt.of(tokens), refusesOverflow, template);
    }

    /**
     * What holds on every one of several servers of one model: the smallest context that any reported, a refusal where
     * any refuses, the widest template. A server that did not report its context leaves it to the others.
     */
    public ModelContext and(ModelContext other) {
        OptionalInt both = tokens.isEmpty() ? other.tokens
                : other.tokens.isEmpty() ? tokens : OptionalInt.of(Math.min(tokens.getAsInt(), other.tokens.getAsInt()));
        return new ModelContext(both, refusesOverflow || other.refusesOverflow, template.widest(other.template));
    }
}
