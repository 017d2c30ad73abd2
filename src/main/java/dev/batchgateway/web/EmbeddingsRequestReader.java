package dev.batchgateway.web;

import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.ServedModels;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import tools.jackson.databind.JsonNode;

/**
 * Reads OpenAI {@code POST /v1/embeddings} bodies strictly, as {@link OpenAiRequestReader} reads completions: {@code
 * input} a string or an array of strings (token ids are refused), {@code model} an embedding model, {@code
 * encoding_format} {@code float} (the default) or {@code base64}, {@code dimensions} a positive integer, {@code user}; any
 * other field is refused naming it.
 */
final class EmbeddingsRequestReader {

    /** The most inputs one request may carry, as OpenAI's own limit; each joins the batcher as its own request. */
    static final int MAX_INPUTS = 2048;
    /** The most dimensions asked for: beyond any embedding model's. */
    static final int MAX_DIMENSIONS = 65_536;

    private static final Set<String> FIELDS = Set.of("model", "input", "encoding_format", "dimensions", "user");

    private final CompletionRequestReader texts;
    private final ServedModels models;

    EmbeddingsRequestReader(CompletionRequestReader texts, ServedModels models) {
        this.texts = texts;
        this.models = models;
    }

    /** A request as the gateway understands it: an input to embed per vector wanted, by one model, in one encoding. */
    record Embeddings(String model, List<Prompt.Embedding> inputs, boolean base64) {}

    Embeddings read(JsonNode body) {
        if (body == null || !body.isObject()) {
            throw OpenAiError.invalid(null, "The request body must be a JSON object.");
        }
        for (var field : body.properties()) {
            if (!FIELDS.contains(field.getKey()) && !field.getValue().isNull()) {
                throw OpenAiError.invalid(field.getKey(), "Unrecognized request argument supplied: " + field.getKey());
            }
        }
        String model = model(body.get("model"));
        Integer dimensions = dimensions(body.get("dimensions"));
        return new Embeddings(model, inputs(body.get("input"), dimensions), base64(body.get("encoding_format")));
    }

    private String model(JsonNode model) {
        if (model == null || model.isNull()) {
            throw OpenAiError.invalid("model", "you must provide a model parameter");
        }
        if (!model.isString()) {
            throw OpenAiError.invalid("model", "model must be a string");
        }
        String name = model.stringValue();
        if (!models.names().contains(name)) {
            throw OpenAiError.modelNotFound(name);
        }
        if (!models.embeds(name)) {
            throw OpenAiError.invalid("model", "The model `" + name + "` does not embed: it generates text, on /v1/completions "
                    + "and /v1/chat/completions. Embedding models here: " + embeddingModels());
        }
        return name;
    }

    private String embeddingModels() {
        List<String> embedding = models.names().stream().filter(models::embeds).toList();
        return embedding.isEmpty() ? "none" : String.join(", ", embedding);
    }

    private List<Prompt.Embedding> inputs(JsonNode input, Integer dimensions) {
        if (input == null || input.isNull()) {
            throw OpenAiError.invalid("input", "input is required");
        }
        if (input.isString()) {
            return List.of(new Prompt.Embedding(text(input, "input"), dimensions));
        }
        if (!input.isArray()) {
            throw OpenAiError.invalid("input", "input must be a string or an array of strings");
        }
        if (input.isEmpty() || input.size() > MAX_INPUTS) {
            throw OpenAiError.invalid("input", "input must hold 1 to " + MAX_INPUTS + " strings, was " + input.size());
        }
        List<Prompt.Embedding> inputs = new ArrayList<>(input.size());
        for (int i = 0; i < input.size(); i++) {
            JsonNode each = input.get(i);
            if (each.isNumber() || each.isArray()) {
                throw OpenAiError.invalid("input", "inputs as token ids are not supported: send text");
            }
            inputs.add(new Prompt.Embedding(text(each, "input[" + i + "]"), dimensions));
        }
        return inputs;
    }

    private String text(JsonNode input, String field) {
        if (!input.isString()) {
            throw OpenAiError.invalid("input", field + " must be a string");
        }
        if (input.stringValue().isEmpty()) {
            throw OpenAiError.invalid("input", field + " must not be empty");
        }
        try {
            return texts.checked(input.stringValue(), field);
        } catch (InvalidRequestException e) {
            throw OpenAiError.invalid("input", e.getMessage());
        }
    }

    private static Integer dimensions(JsonNode dimensions) {
        if (dimensions == null || dimensions.isNull()) {
            return null;
        }
        if (!dimensions.isIntegralNumber() || !dimensions.canConvertToInt() || dimensions.intValue() < 1
                || dimensions.intValue() > MAX_DIMENSIONS) {
            throw OpenAiError.invalid("dimensions", "dimensions must be an integer from 1 to " + MAX_DIMENSIONS);
        }
        return dimensions.intValue();
    }

    private static boolean base64(JsonNode format) {
        if (format == null || format.isNull()) {
            return false;
        }
        if (format.isString() && (format.stringValue().equals("float") || format.stringValue().equals("base64"))) {
            return format.stringValue().equals("base64");
        }
        throw OpenAiError.invalid("encoding_format", "encoding_format must be \"float\" or \"base64\"");
    }
}
