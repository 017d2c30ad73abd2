package dev.batchgateway.worker;

import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;

/**
 * What one OpenAI-compatible inference server does its own way, for {@link OpenAiWorker}: how it is recognised, how a
 * list of prompts is sent to it and answered, where each prompt's exact counts come from, and what proves that the
 * gateway's key is accepted. Everything else (the chat call, the refusal of a whole list for one prompt's sake, the
 * model listing) is the same on all of them. docs/workers.md has the sources each dialect was read from.
 */
enum Dialect {

    /**
     * vLLM 0.10.2 and later: one call with every prompt, answered as one object with a choice per prompt ({@code index}
     * = the prompt's position) and a batch-wide {@code usage}; {@code return_token_ids} gives each choice its
     * {@code prompt_token_ids} and {@code token_ids}, whose lengths are that prompt's counts.
     */
    VLLM("vLLM", "/version", Lists.ONE_CALL, true, null, true),

    /** vLLM before 0.10.2 ({@code GET /version} says which): no token ids, so one call per prompt, each its own usage. */
    VLLM_WITHOUT_TOKEN_IDS("vLLM before 0.10.2", "/version", Lists.ONE_CALL_PER_PROMPT, false, null, true),

    /**
     * llama.cpp's llama-server: one call with every prompt, answered as a JSON array of complete answers, one per prompt,
     * each with its own exact {@code usage}. It ignores {@code model}, and leaves {@code /health} and
     * {@code /v1/models} open under {@code --api-key}: {@code POST /tokenize} proves the key.
     */
    LLAMA_CPP("llama.cpp", "/props", Lists.ONE_CALL, false, new KeyProof("/tokenize", Map.of("content", "a")), false),

    /**
     * SGLang: one call of its native {@code POST /generate} with every prompt in {@code text}, answered as a JSON array,
     * one answer per prompt in prompt order, each with its own {@code meta_info.prompt_tokens} and
     * {@code completion_tokens}. Streams go to {@code /v1/completions}, whose chunks carry each prompt's running usage.
     */
    SGLANG("SGLang", "/get_server_info", Lists.NATIVE_GENERATE, false, null, true),

    /**
     * Hugging Face TGI: its {@code /v1/completions} takes at most {@code --max-client-batch-size} prompts (default 4) and
     * sums their usage, so one call per prompt, each its own usage (TGI batches them itself). It ignores {@code model}
     * (as a LoRA adapter name it does not have) and leaves {@code /info}, {@code /health} and {@code /v1/models} open
     * under {@code --api-key}: {@code POST /tokenize} proves the key.
     */
    TGI("TGI", "/info", Lists.ONE_CALL_PER_PROMPT, false, new KeyProof("/tokenize", Map.of("inputs", "a")), true),

    /** Any other OpenAI-compatible server: one call per prompt, each billed by its own {@code usage}. */
    OPENAI("an OpenAI-compatible server", null, Lists.ONE_CALL_PER_PROMPT, false, null, true);

    /** How the prompts of a batch that is not streamed reach the server. */
    enum Lists {
        /** One {@code /v1/completions} call with every prompt in {@code prompt}. */
        ONE_CALL,
        /** One {@code /v1/completions} call per prompt, all at once. */
        ONE_CALL_PER_PROMPT,
        /** One call of SGLang's own {@code /generate} with every prompt in {@code text}. */
        NATIVE_GENERATE
    }

    /** A minimal call that only a caller with the right key gets an answer to (where listing models proves nothing). */
    record KeyProof(String path, Map<String, Object> body) {}

    /** The order in which a server of unknown kind is asked who it is: the most particular answers first. */
    static final List<Dialect> RECOGNISABLE = List.of(SGLANG, TGI, LLAMA_CPP, VLLM);

    final String server;
    /** The GET that only this kind of server answers in its own way; null when it has none. */
    final String identityPath;
    final Lists lists;
    /** Whether a list call asks for {@code return_token_ids}, the source of each prompt's counts. */
    final boolean tokenIds;
    /** The call that proves the key; null when {@code /v1/models} already needs it. */
    final KeyProof keyProof;
    /**
     * Whether the server refuses (400, TGI 422) a request whose prompt and {@code max_tokens} go beyond the model's
     * context, as vLLM, SGLang, TGI and OpenAI do; llama.cpp refuses only a prompt longer than its context, and stops
     * generating where the context ends.
     */
    final boolean refusesOverflow;

    Dialect(String server, String identityPath, Lists lists, boolean tokenIds, KeyProof keyProof, boolean refusesOverflow) {
        this.server = server;
        this.identityPath = identityPath;
        this.lists = lists;
        this.tokenIds = tokenIds;
        this.keyProof = keyProof;
        this.refusesOverflow = refusesOverflow;
    }

    /**
     * The model's context as this server reports it: llama.cpp's {@code n_ctx} of a slot in {@code GET /props} (what
     * one prompt and its answer may take: {@code -c} over {@code -np}), TGI's {@code max_total_tokens} in {@code GET
     * /info}, else the {@code max_model_len} of the model's entry in {@code GET /v1/models} (vLLM, SGLang); 0 when
     * neither says.
     *
     * @param identity the server's answer to {@link #identityPath}, or null
     * @param listed the model's entry in {@code /v1/models}, or null
     */
    int context(JsonNode identity, JsonNode listed) {
        int own = identity == null ? 0 : switch (this) {
            case LLAMA_CPP -> identity.path("default_generation_settings").path("n_ctx").asInt(0);
            case TGI -> identity.path("max_total_tokens").asInt(0);
            default -> 0;
        };
        return own > 0 ? own : listed == null ? 0 : Math.max(0, listed.path("max_model_len").asInt(0));
    }

    /** Whether a streamed batch is one call with every prompt (each chunk naming its prompt and its running usage). */
    boolean streamsLists() {
        return lists != Lists.ONE_CALL_PER_PROMPT;
    }

    /**
     * Which dialect a 200 answer to {@link #identityPath} shows, or null when it is not this kind of server's answer:
     * vLLM's {@code {"version": …}}, llama.cpp's {@code default_generation_settings}, SGLang's server arguments, TGI's
     * {@code "router": "text-generation-router"}.
     */
    Dialect recognise(JsonNode answer) {
        if (answer == null || !answer.isObject()) {
            return null;
        }
        return switch (this) {
            case VLLM, VLLM_WITHOUT_TOKEN_IDS -> answer.path("version").isString()
                    ? (returnsTokenIds(answer.path("version").asString()) ? VLLM : VLLM_WITHOUT_TOKEN_IDS)
                    : null;
            case LLAMA_CPP -> answer.has("default_generation_settings") ? LLAMA_CPP : null;
            case SGLANG -> answer.has("model_path") && answer.has("tp_size") ? SGLANG : null;
            case TGI -> answer.path("router").isString() && answer.path("router").asString().equals("text-generation-router") ? TGI : null;
            case OPENAI -> null;
        };
    }

    /** vLLM returns per-choice token ids from 0.10.2 on; a version it cannot read is taken as recent. */
    static boolean returnsTokenIds(String version) {
        String[] parts = version.split("[.+-]");
        try {
            int major = Integer.parseInt(parts[0]);
            int minor = parts.length > 1 ? Integer.parseInt(parts[1]) : 0;
            int patch = parts.length > 2 ? Integer.parseInt(parts[2].replaceAll("\\D.*", "")) : 0;
            return major > 0 || minor > 10 || (minor == 10 && patch >= 2);
        } catch (NumberFormatException e) {
            return true;
        }
    }
}
