package dev.batchgateway.web;

import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.GenerationParameters;
import java.util.Set;
import java.util.UUID;
import tools.jackson.databind.JsonNode;

/**
 * Reads {@code {"prompt", "user_id", "max_tokens"}} strictly: no coercion of strings, booleans or fractions into
 * numbers, and every refusal names its field.
 */
final class CompletionRequestReader {

    /** The fields the gateway honours; any other (stream, temperature, …) is refused rather than silently ignored. */
    private static final Set<String> FIELDS = Set.of("prompt", "user_id", "max_tokens");

    private final int maxPromptChars;
    private final int maxTokens;

    /**
     * @param maxPromptChars the longest prompt accepted, in Unicode code points
     * @param maxTokens the default and the ceiling of {@code max_tokens}
     */
    CompletionRequestReader(int maxPromptChars, int maxTokens) {
        this.maxPromptChars = maxPromptChars;
        this.maxTokens = maxTokens;
    }

    CompletionRequest read(JsonNode body, UUID requestId) {
        if (body == null || !body.isObject()) {
            throw new InvalidRequestException("the request body must be a JSON object with prompt and user_id");
        }
        for (String field : body.propertyNames()) {
            if (!FIELDS.contains(field)) {
                throw new InvalidRequestException(field + " is not supported: send only prompt, user_id and max_tokens");
            }
        }
        return new CompletionRequest(requestId, userId(body.get("user_id")), prompt(body.get("prompt")),
                new GenerationParameters(maxTokens(body.get("max_tokens"))));
    }

    private String prompt(JsonNode prompt) {
        if (prompt == null || prompt.isNull()) {
            throw new InvalidRequestException("prompt is required");
        }
        if (!prompt.isString()) {
            throw new InvalidRequestException("prompt must be a JSON string");
        }
        String text = prompt.stringValue();
        if (text.isBlank()) {
            throw new InvalidRequestException("prompt must not be blank");
        }
        if (text.length() > maxPromptChars && text.codePointCount(0, text.length()) > maxPromptChars) {
            throw new InvalidRequestException("prompt is longer than " + maxPromptChars + " characters");
        }
        if (hasUnpairedSurrogate(text)) {
            // "\ud800" is valid JSON but no valid text: the worker could not encode it as UTF-8
            throw new InvalidRequestException("prompt must be valid Unicode: it has an unpaired surrogate escape");
        }
        return text;
    }

    private static boolean hasUnpairedSurrogate(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return true;
            }
        }
        return false;
    }

    private static long userId(JsonNode userId) {
        if (userId == null || userId.isNull()) {
            throw new InvalidRequestException("user_id is required");
        }
        if (!userId.isIntegralNumber()) {
            throw new InvalidRequestException("user_id must be a JSON integer");
        }
        if (!userId.canConvertToLong() || userId.longValue() < 1) {
            throw new InvalidRequestException("user_id must be between 1 and " + Long.MAX_VALUE);
        }
        return userId.longValue();
    }

    private int maxTokens(JsonNode requested) {
        if (requested == null || requested.isNull()) {
            return maxTokens;
        }
        if (!requested.isIntegralNumber()) {
            throw new InvalidRequestException("max_tokens must be a JSON integer");
        }
        if (!requested.canConvertToInt() || requested.intValue() < 1 || requested.intValue() > maxTokens) {
            throw new InvalidRequestException("max_tokens must be between 1 and " + maxTokens);
        }
        return requested.intValue();
    }
}
