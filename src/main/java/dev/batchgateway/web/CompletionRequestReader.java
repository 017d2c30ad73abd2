package dev.batchgateway.web;

import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.MaxTokensException;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.TokenCeilings;
import dev.batchgateway.http.RequestValues;
import java.util.List;
import java.util.OptionalLong;
import java.util.Set;
import java.util.function.Function;
import java.util.UUID;
import tools.jackson.databind.JsonNode;

/**
 * Reads {@code {"prompt", "user_id", "max_tokens", "model", "stream", "service_tier"}} strictly: no coercion of strings,
 * booleans or fractions into numbers, and every refusal names its field.
 */
final class CompletionRequestReader {

    /** The fields the gateway honours; any other (temperature, …) is refused rather than silently ignored. */
    private static final Set<String> FIELDS = Set.of("prompt", "user_id", "max_tokens", "model", "stream", "service_tier");
    /** OpenAI's name for "the tier the caller's settings say": the key's, else default. */
    private static final String AUTO = "auto";

    private final int maxPromptChars;
    private final TokenCeilings ceilings;
    private final List<String> models;

    /**
     * @param maxPromptChars the longest prompt accepted, in Unicode code points
     * @param ceilings the ceiling of {@code max_tokens} for each model, and its defaults
     * @param models the models the gateway serves, the default first
     */
    CompletionRequestReader(int maxPromptChars, TokenCeilings ceilings, List<String> models) {
        this.maxPromptChars = maxPromptChars;
        this.ceilings = ceilings;
        this.models = List.copyOf(models);
    }

    /**
     * @param billedUser the user to bill, from the body's {@code user_id} (empty when absent): the caller's own user
     *     with an API key, the body's with keys off
     * @param automaticTier the name of the tier a request asking for {@code auto}, or naming none, runs in: the key's
     */
    CompletionRequest read(JsonNode body, UUID requestId, Function<OptionalLong, OptionalLong> billedUser,
            String automaticTier) {
        if (body == null || !body.isObject()) {
            throw new InvalidRequestException("the request body must be a JSON object with prompt and user_id");
        }
        for (String field : body.propertyNames()) {
            if (!FIELDS.contains(field)) {
                throw new InvalidRequestException(field
                        + " is not supported: send only prompt, user_id, max_tokens, model, stream and service_tier");
            }
        }
        long user = billedUser.apply(userId(body.get("user_id")))
                .orElseThrow(() -> new InvalidRequestException("user_id is required"));
        var prompt = new Prompt.Text(prompt(body.get("prompt"), "prompt"));
        String model = model(body.get("model"));
        return new CompletionRequest(requestId, user, prompt,
                new GenerationParameters(model, maxTokens(body.get("max_tokens"), model, prompt), null, null, List.of(), null),
                serviceTier(body.get("service_tier"), automaticTier));
    }

    /**
     * The tier a request runs in, with OpenAI's values: {@code default} or {@code flex} as named; {@code auto}, null or
     * absent: {@code automaticTier} (the key's, else default). Anything else names {@code service_tier}.
     */
    static ServiceTier serviceTier(JsonNode tier, String automaticTier) {
        if (tier == null || tier.isNull() || tier.isString() && tier.stringValue().equals(AUTO)) {
            return ServiceTier.named(automaticTier).orElse(ServiceTier.DEFAULT);
        }
        return ServiceTier.named(tier.isString() ? tier.stringValue() : null).orElseThrow(() -> new InvalidRequestException(
                "service_tier must be \"auto\", \"default\" or \"flex\""));
    }

    /** Whether the caller asked for its text as it is generated: {@code "stream": true}; absent or null is false. */
    boolean streamed(JsonNode body) {
        JsonNode stream = body.get("stream");
        if (stream == null || stream.isNull()) {
            return false;
        }
        if (!stream.isBoolean()) {
            throw new InvalidRequestException("stream must be true or false");
        }
        return stream.booleanValue();
    }

    /** A prompt: a non-blank JSON string of valid Unicode, at most the longest prompt accepted; {@code field} names it. */
    String prompt(JsonNode prompt, String field) {
        if (prompt == null || prompt.isNull()) {
            throw new InvalidRequestException(field + " is required");
        }
        if (!prompt.isString()) {
            throw new InvalidRequestException(field + " must be a JSON string");
        }
        String text = prompt.stringValue();
        if (text.isBlank()) {
            throw new InvalidRequestException(field + " must not be blank");
        }
        return checked(text, field);
    }

    /** A text no longer than the longest prompt accepted, and valid Unicode; {@code field} names it. */
    String checked(String text, String field) {
        if (text.length() > maxPromptChars && text.codePointCount(0, text.length()) > maxPromptChars) {
            throw new InvalidRequestException(field + " is longer than " + maxPromptChars + " characters");
        }
        if (RequestValues.hasUnpairedSurrogate(text)) {
            // "\ud800" is valid JSON but no valid text: the worker could not encode it as UTF-8
            throw new InvalidRequestException(field + " must be valid Unicode: it has an unpaired surrogate escape");
        }
        return text;
    }

    /** The longest prompt accepted, in Unicode code points. */
    int maxPromptChars() {
        return maxPromptChars;
    }

    private static OptionalLong userId(JsonNode userId) {
        if (userId == null || userId.isNull()) {
            return OptionalLong.empty();
        }
        if (!userId.isIntegralNumber()) {
            throw new InvalidRequestException("user_id must be a JSON integer");
        }
        if (!userId.canConvertToLong() || userId.longValue() < 1) {
            throw new InvalidRequestException("user_id must be between 1 and " + Long.MAX_VALUE);
        }
        return OptionalLong.of(userId.longValue());
    }

    private String model(JsonNode model) {
        if (model == null || model.isNull()) {
            return models.getFirst();
        }
        if (!model.isString() || !models.contains(model.stringValue())) {
            throw new InvalidRequestException("model must be one of the models this gateway serves: " + String.join(", ", models));
        }
        return model.stringValue();
    }

    /** {@code max_tokens} as asked, within the model's ceiling; absent, {@value TokenCeilings#COMPLETE_DEFAULT} or less. */
    private int maxTokens(JsonNode requested, String model, Prompt prompt) {
        if (requested == null || requested.isNull()) {
            return ceilings.byDefault(model, List.of(prompt), TokenCeilings.COMPLETE_DEFAULT);
        }
        if (!requested.isIntegralNumber()) {
            throw new InvalidRequestException("max_tokens must be a JSON integer");
        }
        try {
            return asked(ceilings, model, requested);
        } catch (MaxTokensException e) {
            throw new InvalidRequestException(e.getMessage());
        }
    }

    /** A JSON integer's {@code max_tokens}, checked against the model's ceiling, of any size. */
    static int asked(TokenCeilings ceilings, String model, JsonNode integer) {
        if (integer.canConvertToLong()) {
            return ceilings.asked(model, integer.longValue());
        }
        if (integer.bigIntegerValue().signum() > 0) {
            throw ceilings.tooMany(model, integer.bigIntegerValue().toString());
        }
        throw new MaxTokensException("max_tokens must be at least 1, was " + integer.bigIntegerValue());
    }
}
