package dev.batchgateway.web;

import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.MaxTokensException;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.TokenCeilings;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntSupplier;
import java.util.function.Predicate;
import tools.jackson.databind.JsonNode;

/**
 * Reads OpenAI {@code POST /v1/completions} and {@code POST /v1/chat/completions} bodies strictly, as OpenAI does: a field the gateway does not know is
 * refused naming it in {@code param}, and so is one it knows but does not honour, unless it carries OpenAI's default
 * value (clients such as LangChain send {@code "n": 1}, penalties 0, {@code "echo": false} on every call). Wrong types
 * are refused too; nothing is coerced.
 */
final class OpenAiRequestReader {

    /** The most prompts one request may carry; each joins the batcher as its own request. */
    static final int MAX_PROMPTS = 64;

    private static final Set<String> SAMPLING = Set.of(
            "model", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream", "stream_options", "user", "service_tier");
    private static final Set<String> COMPLETIONS = union(SAMPLING, Set.of("prompt"));
    /** Spring AI sends {@code include_obfuscation} (false) whenever stream options are configured. */
    private static final Set<String> STREAM_OPTIONS = Set.of("include_usage", "include_obfuscation");
    private static final Set<String> CHAT = union(SAMPLING, Set.of("messages", "max_completion_tokens", "parallel_tool_calls"));
    /** Fields the gateway does not honour, accepted only with the value that changes nothing (null is always fine). */
    private static final Map<String, Predicate<JsonNode>> COMPLETIONS_DEFAULTS = Map.of(
            "echo", OpenAiRequestReader::isFalse,
            "frequency_penalty", OpenAiRequestReader::isZero,
            "presence_penalty", OpenAiRequestReader::isZero,
            "best_of", value -> value.isIntegralNumber() && value.canConvertToInt() && value.intValue() == 1,
            "logprobs", value -> false,
            "logit_bias", OpenAiRequestReader::isEmptyObject,
            "suffix", value -> false);
    private static final Map<String, Predicate<JsonNode>> CHAT_DEFAULTS = Map.of(
            "frequency_penalty", OpenAiRequestReader::isZero,
            "presence_penalty", OpenAiRequestReader::isZero,
            "logprobs", OpenAiRequestReader::isFalse,
            "top_logprobs", value -> false,
            "logit_bias", OpenAiRequestReader::isEmptyObject,
            "response_format", value -> value.isObject() && value.size() == 1 && "text".equals(value.path("type").asString(null)),
            "tools", value -> value.isArray() && value.isEmpty(),
            "tool_choice", value -> value.isString() && "none".equals(value.stringValue()),
            "store", OpenAiRequestReader::isFalse);

    private final CompletionRequestReader prompts;
    private final TokenCeilings ceilings;
    private final List<String> models;

    /**
     * @param ceilings the ceiling of {@code max_tokens} for each model, and its defaults
     * @param models the models the gateway serves
     */
    OpenAiRequestReader(CompletionRequestReader prompts, TokenCeilings ceilings, List<String> models) {
        this.prompts = prompts;
        this.ceilings = ceilings;
        this.models = List.copyOf(models);
    }

    /**
     * A request as the gateway understands it: one prompt per choice wanted; the parameters name the model; every prompt
     * runs in the service tier.
     */
    record Completions(List<Prompt> prompts, GenerationParameters parameters, boolean stream, boolean includeUsage,
            ServiceTier serviceTier) {}

    /**
     * {@code /v1/completions}: {@code prompt} a string or 1 to {@value #MAX_PROMPTS} strings; {@value
     * TokenCeilings#COMPLETIONS_DEFAULT} tokens by default, as OpenAI's.
     *
     * @param automaticTier the name of the tier {@code "service_tier": "auto"} (or none) means: the key's
     */
    Completions completions(JsonNode body, String automaticTier) {
        requireKnownFields(body, COMPLETIONS, COMPLETIONS_DEFAULTS);
        JsonNode maxTokens = integer(body.get("max_tokens"), "max_tokens");
        List<Prompt> texts = prompts(body.get("prompt"));
        String model = model(body);
        return read(body, maxTokens(maxTokens, "max_tokens", model,
                () -> ceilings.byDefault(model, texts, TokenCeilings.COMPLETIONS_DEFAULT)), texts, automaticTier);
    }

    /** {@code /v1/chat/completions}: one conversation; by default, what its prompt leaves of the model's context. */
    Completions chat(JsonNode body, String automaticTier) {
        requireKnownFields(body, CHAT, CHAT_DEFAULTS);
        JsonNode maxTokens = body.get("max_tokens");
        JsonNode maxCompletionTokens = body.get("max_completion_tokens");
        if (maxTokens != null && !maxTokens.isNull() && maxCompletionTokens != null && !maxCompletionTokens.isNull()) {
            throw OpenAiError.invalid("max_tokens", "give max_completion_tokens or max_tokens, not both");
        }
        String field = maxCompletionTokens != null && !maxCompletionTokens.isNull() ? "max_completion_tokens" : "max_tokens";
        JsonNode asked = integer(body.get(field), field);
        List<Prompt.Message> messages = messages(body.get("messages"));
        String model = model(body);
        List<Prompt> chat = List.of(ceilings.chat(model, messages));
        return read(body, maxTokens(asked, field, model, () -> ceilings.remaining(model, chat)), chat, automaticTier);
    }

    /**
     * A request's {@code max_tokens} (or what {@code field} names): as asked, within the model's ceiling, else 400
     * naming the field with the ceiling and why; absent, {@code byDefault}. Each OpenAI endpoint that generates text
     * reads it here.
     */
    int maxTokens(JsonNode asked, String field, String model, IntSupplier byDefault) {
        if (asked == null || asked.isNull()) {
            return byDefault.getAsInt();
        }
        try {
            return CompletionRequestReader.asked(ceilings, model, integer(asked, field));
        } catch (MaxTokensException e) {
            throw OpenAiError.invalid(field, e.getMessage().replaceFirst("^max_tokens", field));
        }
    }

    /** A JSON integer, null, or absent; anything else is refused naming {@code field}. */
    private static JsonNode integer(JsonNode value, String field) {
        if (value != null && !value.isNull() && !value.isIntegralNumber()) {
            throw OpenAiError.invalid(field, field + " must be an integer");
        }
        return value;
    }

    /** The model a request names, one of those served: 400 when it names none, 404 {@code model_not_found} for another. */
    private String model(JsonNode body) {
        String model = string(body.get("model"), "model");
        if (model == null) {
            throw OpenAiError.invalid("model", "you must provide a model parameter");
        }
        if (!models.contains(model)) {
            throw OpenAiError.modelNotFound(model);
        }
        return model;
    }

    static void requireKnownFields(JsonNode body, Set<String> honoured, Map<String, Predicate<JsonNode>> defaults) {
        if (body == null || !body.isObject()) {
            throw OpenAiError.invalid(null, "The request body must be a JSON object.");
        }
        for (var field : body.properties()) {
            String name = field.getKey();
            JsonNode value = field.getValue();
            if (honoured.contains(name) || value.isNull()) {
                continue;
            }
            Predicate<JsonNode> isDefault = defaults.get(name);
            if (isDefault == null) {
                throw OpenAiError.invalid(name, "Unrecognized request argument supplied: " + name);
            }
            if (!isDefault.test(value)) {
                throw OpenAiError.invalid(name, name + " is not supported by this gateway; leave it out or send its default");
            }
        }
    }

    private Completions read(JsonNode body, int maxTokens, List<Prompt> prompts, String automaticTier) {
        String model = model(body);
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
                if (!STREAM_OPTIONS.contains(option.getKey())) {
                    throw OpenAiError.invalid("stream_options." + option.getKey(),
                            "Unrecognized request argument supplied: stream_options." + option.getKey());
                }
            }
            includeUsage = flag(options.get("include_usage"), "stream_options.include_usage");
            // OpenAI's padding of streamed deltas against a network side channel: none is added here; false says just that,
            // and true is OpenAI's default, accepted as every default is
            flag(options.get("include_obfuscation"), "stream_options.include_obfuscation");
        }
        var parameters = new GenerationParameters(
                model,
                maxTokens,
                number(body.get("temperature"), "temperature", 0, 2, true),
                number(body.get("top_p"), "top_p", 0, 1, false),
                stop(body.get("stop")),
                seed(body.get("seed")));
        ServiceTier tier;
        try {
            tier = CompletionRequestReader.serviceTier(body.get("service_tier"), automaticTier);
        } catch (InvalidRequestException e) {
            throw OpenAiError.invalid("service_tier", e.getMessage());
        }
        return new Completions(prompts, parameters, stream, includeUsage, tier);
    }

    private List<Prompt.Message> messages(JsonNode messages) {
        if (messages == null || messages.isNull()) {
            throw OpenAiError.invalid("messages", "messages is required");
        }
        if (!messages.isArray() || messages.isEmpty()) {
            throw OpenAiError.invalid("messages", "messages must be a non-empty array of messages");
        }
        List<Prompt.Message> read = new ArrayList<>(messages.size());
        boolean anyText = false;
        for (int i = 0; i < messages.size(); i++) {
            String field = "messages[" + i + "]";
            JsonNode message = messages.get(i);
            if (!message.isObject()) {
                throw OpenAiError.invalid(field, field + " must be an object with role and content");
            }
            for (var part : message.properties()) {
                if (!part.getKey().equals("role") && !part.getKey().equals("content") && !part.getValue().isNull()) {
                    throw OpenAiError.invalid(field + "." + part.getKey(), field + "." + part.getKey() + " is not supported by this gateway");
                }
            }
            String role = string(message.get("role"), field + ".role");
            if ("developer".equals(role)) {
                role = "system"; // OpenAI's newer name for the system role
            }
            if (role == null || !Prompt.Message.ROLES.contains(role)) {
                throw OpenAiError.invalid(field + ".role", field + ".role must be system, user or assistant");
            }
            String content = content(message.get("content"), field + ".content");
            anyText |= !content.isBlank();
            read.add(new Prompt.Message(role, content));
        }
        if (!anyText) {
            throw OpenAiError.invalid("messages", "the messages hold no text");
        }
        if (read.stream().mapToLong(m -> m.content().codePointCount(0, m.content().length())).sum() > prompts.maxPromptChars()) {
            throw OpenAiError.invalid("messages", "the messages are longer than " + prompts.maxPromptChars() + " characters together");
        }
        return read;
    }

    /** A message's content: a string, or OpenAI's array of text parts, joined; other parts (images, audio) are refused. */
    private String content(JsonNode content, String field) {
        String text;
        if (content != null && content.isString()) {
            text = content.stringValue();
        } else if (content != null && content.isArray()) {
            StringBuilder joined = new StringBuilder();
            for (JsonNode part : content) {
                if (!part.isObject() || !"text".equals(part.path("type").asString(null)) || !part.path("text").isString()) {
                    throw OpenAiError.invalid(field, field + " parts must be {\"type\": \"text\", \"text\": …}: only text is supported");
                }
                joined.append(part.get("text").stringValue());
            }
            text = joined.toString();
        } else {
            throw OpenAiError.invalid(field, field + " must be a string or an array of text parts");
        }
        try {
            return prompts.checked(text, field);
        } catch (InvalidRequestException e) {
            throw OpenAiError.invalid(field, e.getMessage());
        }
    }

    private List<Prompt> prompts(JsonNode prompt) {
        if (prompt == null || prompt.isNull()) {
            throw OpenAiError.invalid("prompt", "prompt is required");
        }
        try {
            if (prompt.isString()) {
                return List.of(new Prompt.Text(prompts.prompt(prompt, "prompt")));
            }
            if (!prompt.isArray()) {
                throw OpenAiError.invalid("prompt", "prompt must be a string or an array of strings");
            }
            if (prompt.isEmpty() || prompt.size() > MAX_PROMPTS) {
                throw OpenAiError.invalid("prompt", "prompt must hold 1 to " + MAX_PROMPTS + " strings, was " + prompt.size());
            }
            List<Prompt> texts = new ArrayList<>(prompt.size());
            for (int i = 0; i < prompt.size(); i++) {
                if (prompt.get(i).isNumber() || prompt.get(i).isArray()) {
                    throw OpenAiError.invalid("prompt", "prompts as token ids are not supported: send text");
                }
                texts.add(new Prompt.Text(prompts.prompt(prompt.get(i), "prompt[" + i + "]")));
            }
            return texts;
        } catch (InvalidRequestException e) {
            throw OpenAiError.invalid("prompt", e.getMessage());
        }
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

    private static boolean isFalse(JsonNode value) {
        return value.isBoolean() && !value.booleanValue();
    }

    private static boolean isEmptyObject(JsonNode value) {
        return value.isObject() && value.isEmpty();
    }

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> both = new java.util.HashSet<>(a);
        both.addAll(b);
        return Set.copyOf(both);
    }
}
