package dev.batchgateway.web;

import dev.batchgateway.completion.GenerationParameters;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import tools.jackson.databind.JsonNode;

/**
 * Reads an OpenAI {@code POST /v1/completions} body strictly, as OpenAI does: a field the gateway does not know is
 * refused naming it in {@code param}, and so is one it knows but does not honour, unless it carries OpenAI's default
 * value (clients such as LangChain send {@code "n": 1}, penalties 0, {@code "echo": false} on every call). Wrong types
 * are refused too; nothing is coerced.
 */
final class OpenAiRequestReader {

    /** OpenAI's own default for {@code max_tokens} on completions. */
    static final int DEFAULT_MAX_TOKENS = 16;
    /** The most prompts one request may carry; each joins the batcher as its own request. */
    static final int MAX_PROMPTS = 64;

    private static final Set<String> HONOURED = Set.of(
            "model", "prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream", "stream_options", "user");
    /** Fields the gateway does not honour, accepted only with the value that changes nothing (null is always fine). */
    private static final Map<String, Predicate<JsonNode>> ONLY_DEFAULT = Map.of(
            "echo", value -> value.isBoolean() && !value.booleanValue(),
            "frequency_penalty", OpenAiRequestReader::isZero,
            "presence_penalty", OpenAiRequestReader::isZero,
            "best_of", value -> value.isIntegralNumber() && value.canConvertToInt() && value.intValue() == 1,
            "logprobs", value -> false,
            "logit_bias", value -> value.isObject() && value.isEmpty(),
            "suffix", value -> false);

    private final CompletionRequestReader prompts;
    private final int maxTokens;
    private final List<String> models;

    /** @param models the models the gateway serves */
    OpenAiRequestReader(CompletionRequestReader prompts, int maxTokens, List<String> models) {
        this.prompts = prompts;
        this.maxTokens = maxTokens;
        this.models = List.copyOf(models);
    }

    /** A completions request as the gateway understands it; the parameters name the model. */
    record Completions(List<String> prompts, GenerationParameters parameters, boolean stream, boolean includeUsage) {}

    Completions completions(JsonNode body) {
        if (body == null || !body.isObject()) {
            throw OpenAiError.invalid(null, "The request body must be a JSON object.");
        }
        for (var field : body.properties()) {
            String name = field.getKey();
            JsonNode value = field.getValue();
            if (HONOURED.contains(name) || value.isNull()) {
                continue;
            }
            Predicate<JsonNode> isDefault = ONLY_DEFAULT.get(name);
            if (isDefault == null) {
                throw OpenAiError.invalid(name, "Unrecognized request argument supplied: " + name);
            }
            if (!isDefault.test(value)) {
                throw OpenAiError.invalid(name, name + " is not supported by this gateway; leave it out or send its default");
            }
        }
        String model = string(body.get("model"), "model");
        if (model == null) {
            throw OpenAiError.invalid("model", "you must provide a model parameter");
        }
        if (!models.contains(model)) {
            throw OpenAiError.modelNotFound(model);
        }
        var n = body.get("n");
        if (n != null && !n.isNull() && !(n.isIntegralNumber() && n.canConvertToInt() && n.intValue() == 1)) {
            throw OpenAiError.invalid("n", "n must be 1: this gateway answers one choice per prompt");
        }
        boolean stream = flag(body.get("stream"), "stream");
        boolean includeUsage = false;
        JsonNode options = body.get("stream_options");
        if (options != null && !options.isNull()) {
            if (!stream) {
                throw OpenAiError.invalid("stream_options", "stream_options is only allowed when stream is true");
            }
            if (!options.isObject()) {
                throw OpenAiError.invalid("stream_options", "stream_options must be an object");
            }
            for (var option : options.properties()) {
                if (!option.getKey().equals("include_usage")) {
                    throw OpenAiError.invalid("stream_options." + option.getKey(),
                            "Unrecognized request argument supplied: stream_options." + option.getKey());
                }
            }
            includeUsage = flag(options.get("include_usage"), "stream_options.include_usage");
        }
        var parameters = new GenerationParameters(
                model,
                maxTokens(body.get("max_tokens")),
                number(body.get("temperature"), "temperature", 0, 2, true),
                number(body.get("top_p"), "top_p", 0, 1, false),
                stop(body.get("stop")),
                seed(body.get("seed")));
        return new Completions(prompts(body.get("prompt")), parameters, stream, includeUsage);
    }

    private List<String> prompts(JsonNode prompt) {
        if (prompt == null || prompt.isNull()) {
            throw OpenAiError.invalid("prompt", "prompt is required");
        }
        try {
            if (prompt.isString()) {
                return List.of(prompts.prompt(prompt, "prompt"));
            }
            if (!prompt.isArray()) {
                throw OpenAiError.invalid("prompt", "prompt must be a string or an array of strings");
            }
            if (prompt.isEmpty() || prompt.size() > MAX_PROMPTS) {
                throw OpenAiError.invalid("prompt", "prompt must hold 1 to " + MAX_PROMPTS + " strings, was " + prompt.size());
            }
            List<String> texts = new ArrayList<>(prompt.size());
            for (int i = 0; i < prompt.size(); i++) {
                if (prompt.get(i).isNumber() || prompt.get(i).isArray()) {
                    throw OpenAiError.invalid("prompt", "prompts as token ids are not supported: send text");
                }
                texts.add(prompts.prompt(prompt.get(i), "prompt[" + i + "]"));
            }
            return texts;
        } catch (InvalidRequestException e) {
            throw OpenAiError.invalid("prompt", e.getMessage());
        }
    }

    private int maxTokens(JsonNode requested) {
        if (requested == null || requested.isNull()) {
            return Math.min(DEFAULT_MAX_TOKENS, maxTokens);
        }
        if (!requested.isIntegralNumber() || !requested.canConvertToInt() || requested.intValue() < 1
                || requested.intValue() > maxTokens) {
            throw OpenAiError.invalid("max_tokens", "max_tokens must be an integer from 1 to " + maxTokens);
        }
        return requested.intValue();
    }

    private static Double number(JsonNode value, String field, double min, double max, boolean minIncluded) {
        if (value == null || value.isNull()) {
            return null;
        }
        double number = value.isNumber() ? value.doubleValue() : Double.NaN;
        boolean aboveMin = minIncluded ? number >= min : number > min;
        if (!value.isNumber() || !aboveMin || !(number <= max)) {
            throw OpenAiError.invalid(field, field + " must be a number from " + (minIncluded ? "" : "above ") + min + " to " + max);
        }
        return number;
    }

    private static List<String> stop(JsonNode stop) {
        if (stop == null || stop.isNull()) {
            return List.of();
        }
        if (stop.isString() && !stop.stringValue().isEmpty()) {
            return List.of(stop.stringValue());
        }
        if (stop.isArray() && stop.size() <= GenerationParameters.MAX_STOP_SEQUENCES) {
            List<String> sequences = new ArrayList<>();
            for (JsonNode sequence : stop) {
                if (!sequence.isString() || sequence.stringValue().isEmpty()) {
                    throw OpenAiError.invalid("stop", "stop sequences must be non-empty strings");
                }
                sequences.add(sequence.stringValue());
            }
            return sequences;
        }
        throw OpenAiError.invalid("stop", "stop must be a non-empty string or an array of up to "
                + GenerationParameters.MAX_STOP_SEQUENCES + " of them");
    }

    private static Long seed(JsonNode seed) {
        if (seed == null || seed.isNull()) {
            return null;
        }
        if (!seed.isIntegralNumber() || !seed.canConvertToLong()) {
            throw OpenAiError.invalid("seed", "seed must be an integer");
        }
        return seed.longValue();
    }

    private static String string(JsonNode value, String field) {
        if (value == null || value.isNull()) {
            return null;
        }
        if (!value.isString()) {
            throw OpenAiError.invalid(field, field + " must be a string");
        }
        return value.stringValue();
    }

    private static boolean flag(JsonNode value, String field) {
        if (value == null || value.isNull()) {
            return false;
        }
        if (!value.isBoolean()) {
            throw OpenAiError.invalid(field, field + " must be a boolean");
        }
        return value.booleanValue();
    }

    private static boolean isZero(JsonNode value) {
        return value.isNumber() && value.doubleValue() == 0;
    }
}
