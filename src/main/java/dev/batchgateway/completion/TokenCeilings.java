package dev.batchgateway.completion;

import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.function.Function;

/**
 * How many tokens a request may ask a model to generate ({@code max_tokens}), and how many it gets when it does not
 * say: the one place every entry point asks ({@code /complete}, {@code /v1/completions}, {@code /v1/chat/completions},
 * and any that reuses chat's ceiling).
 *
 * <p>The ceiling is the model's context as its servers report it when probed ({@link ModelContext}), or the operator's
 * cap ({@code GATEWAY_MAX_TOKENS}) when that is lower; a model whose servers do not report their context has the cap,
 * else {@value #UNREPORTED_CONTEXT} tokens. Above it, {@link MaxTokensException}. Whether a prompt leaves room for
 * {@code max_tokens} in the context the gateway cannot tell (it bounds a prompt's tokens but cannot count them): a server
 * that refuses a request beyond its context answers that caller alone with its own 400. Where the gateway picks {@code
 * max_tokens} itself, it picks one that fits beside the prompt's {@link TokenBound}.
 */
public final class TokenCeilings {

    /** The context assumed for a model whose servers do not report theirs (nor have yet): a common small one. */
    public static final int UNREPORTED_CONTEXT = 4096;
    /** {@code /v1/completions}' default, as OpenAI's. */
    public static final int COMPLETIONS_DEFAULT = 16;
    /** {@code /complete}'s default. */
    public static final int COMPLETE_DEFAULT = 256;
    /**
     * The least a default gives when the prompt's bound leaves less room than that in the context: the bound may be
     * four times the prompt's real tokens, and a server that finds the prompt too long says so itself.
     */
    static final int LEAST_DEFAULT = 16;

    private final OptionalInt cap;
    private final Function<String, ModelContext> contexts;

    /**
     * @param cap the operator's ceiling ({@code GATEWAY_MAX_TOKENS}), empty for none
     * @param contexts what a model's servers last said of its context
     */
    public TokenCeilings(OptionalInt cap, Function<String, ModelContext> contexts) {
        this.cap = Objects.requireNonNull(cap, "cap");
        this.contexts = Objects.requireNonNull(contexts, "contexts");
        if (cap.isPresent() && cap.getAsInt() < 1) {
            throw new IllegalArgumentException("GATEWAY_MAX_TOKENS must be at least 1, was " + cap.getAsInt());
        }
    }

    /** The most {@code max_tokens} a request to {@code model} may ask, and why that is the limit. */
    public record Ceiling(int tokens, String why) {}

    /** The ceiling of {@code max_tokens} for {@code model}, whatever the prompt. */
    public Ceiling ceiling(String model) {
        OptionalInt context = contexts.apply(model).tokens();
        if (context.isPresent() && (cap.isEmpty() || context.getAsInt() <= cap.getAsInt())) {
            return new Ceiling(context.getAsInt(), "the context of model " + model + " is " + context.getAsInt()
                    + " tokens, as its server reports it");
        }
        if (cap.isPresent()) {
            return new Ceiling(cap.getAsInt(), "this gateway caps max_tokens at " + cap.getAsInt() + " (GATEWAY_MAX_TOKENS)");
        }
        return new Ceiling(UNREPORTED_CONTEXT, "the server of model " + model + " does not report its context, and the "
                + "gateway assumes " + UNREPORTED_CONTEXT + " tokens (GATEWAY_MAX_TOKENS sets another ceiling)");
    }

    /** A conversation for {@code model}, bounded with its chat template's allowance. */
    public Prompt.Chat chat(String model, List<Prompt.Message> messages) {
        return new Prompt.Chat(messages, contexts.apply(model).template());
    }

    /**
     * The {@code max_tokens} a request asked for, when {@code model} allows it.
     *
     * @throws MaxTokensException above the ceiling, saying what it is and why
     */
    public int asked(String model, long maxTokens) {
        if (maxTokens < 1) {
            throw new MaxTokensException("max_tokens must be at least 1, was " + maxTokens);
        }
        if (maxTokens > ceiling(model).tokens()) {
            throw tooMany(model, Long.toString(maxTokens));
        }
        return (int) maxTokens;
    }

    /** The refusal of {@code asked} tokens (a number's text, of any size) as more than {@code model}'s ceiling. */
    public MaxTokensException tooMany(String model, String asked) {
        Ceiling ceiling = ceiling(model);
        return new MaxTokensException("max_tokens is " + asked + ", more than " + ceiling.tokens() + ": " + ceiling.why()
                + "; send at most " + ceiling.tokens());
    }

    /**
     * The {@code max_tokens} of a request that gave none, on an endpoint whose default is {@code preferred}: at most
     * the ceiling and, where the model's server refuses a prompt and {@code max_tokens} beyond its context, at most what
     * the longest prompt's bound leaves of it (but {@value #LEAST_DEFAULT}, or the preferred if less, whatever it leaves).
     */
    public int byDefault(String model, List<? extends Prompt> prompts, int preferred) {
        ModelContext context = contexts.apply(model);
        return fitting(Math.min(preferred, ceiling(model).tokens()), context, prompts, context.refusesOverflow());
    }

    /**
     * A chat's {@code max_tokens} when it gave none: the rest of the context beside its prompt's bound, within the
     * ceiling (but {@value #LEAST_DEFAULT} whatever the bound leaves); the ceiling when the context is not reported.
     */
    public int remaining(String model, List<? extends Prompt> prompts) {
        return fitting(ceiling(model).tokens(), contexts.apply(model), prompts, true);
    }

    private static int fitting(int wanted, ModelContext context, List<? extends Prompt> prompts, boolean besidePrompt) {
        if (!besidePrompt || context.tokens().isEmpty()) {
            return wanted;
        }
        long longest = prompts.stream().mapToLong(TokenBound::prompt).max().orElse(0);
        long room = context.tokens().getAsInt() - longest;
        return (int) Math.max(Math.min(wanted, room), Math.min(wanted, LEAST_DEFAULT));
    }
}
