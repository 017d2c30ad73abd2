package dev.batchgateway.web;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonRawValue;
import dev.batchgateway.batch.LineFormat;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.TokenCeilings;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.springframework.stereotype.Component;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * The lines of a Batch API file as {@code /v1/completions} and {@code /v1/chat/completions} define them: a line's body
 * is read by the same {@link OpenAiRequestReader} as those endpoints' bodies, refused with the same OpenAI error, and
 * answered with the same answer objects as {@link OpenAiController}'s, in the flex tier (a body's {@code service_tier}
 * is ignored: batch lines run on idle capacity).
 */
@Component
class BatchLines implements LineFormat {

    static final String COMPLETIONS = "/v1/completions";
    static final String CHAT = "/v1/chat/completions";

    private final JsonMapper json = JsonMapper.builder().build();
    private final OpenAiRequestReader reader;
    private final List<String> models;

    BatchLines(WebSettings settings, ServedModels served, TokenCeilings ceilings) {
        this.models = served.names();
        this.reader = new OpenAiRequestReader(
                new CompletionRequestReader(settings.maxPromptChars(), ceilings, models), ceilings, models);
    }

    @Override
    public List<String> endpoints() {
        return List.of(CHAT, COMPLETIONS);
    }

    @Override
    public Envelope envelope(String line, String endpoint) {
        JsonNode node;
        try {
            node = json.readTree(line);
        } catch (JacksonException notJson) {
            throw new InvalidLineException("invalid_json", null, "The line is not valid JSON");
        }
        if (node == null || !node.isObject()) {
            throw new InvalidLineException("invalid_json", null, "The line must be a JSON object");
        }
        JsonNode customId = node.get("custom_id");
        if (customId == null || !customId.isString() || customId.stringValue().isEmpty()) {
            throw new InvalidLineException("missing_custom_id", "custom_id", "The line has no custom_id (a non-empty string)");
        }
        if (!"POST".equals(node.path("method").asString(null))) {
            throw new InvalidLineException("invalid_method", "method", "method must be POST");
        }
        String url = node.path("url").asString(null);
        if (!endpoint.equals(url)) {
            throw new InvalidLineException("invalid_url", "url", "url must be the batch's endpoint " + endpoint + ", was " + url);
        }
        JsonNode body = node.get("body");
        if (body == null || !body.isObject()) {
            throw new InvalidLineException("invalid_body", "body", "body must be a JSON object, the request for " + url);
        }
        JsonNode model = body.get("model");
        if (model == null || !model.isString() || !models.contains(model.stringValue())) {
            throw new InvalidLineException("model_not_found", "body.model",
                    "The model `" + (model == null ? null : model.asString(null)) + "` does not exist; served: " + models);
        }
        if (COMPLETIONS.equals(url) && body.path("prompt").isArray()) {
            throw new InvalidLineException("invalid_prompt", "body.prompt", "a batch line's prompt is one string: put each prompt on its own line");
        }
        return new Envelope(customId.stringValue(), url, json.writeValueAsString(body));
    }

    @Override
    public Reading read(String url, String body, long user, UUID requestId) {
        ObjectNode node = (ObjectNode) json.readTree(body);
        node.remove("service_tier"); // batch lines run as flex, whatever the body asks
        try {
            if (node.path("stream").asBoolean(false)) {
                throw OpenAiError.invalid("stream", "stream is not supported in a batch: the answer goes to the output file");
            }
            boolean chat = CHAT.equals(url);
            OpenAiRequestReader.Completions asked = chat ? reader.chat(node, ServiceTier.FLEX.wireName())
                    : reader.completions(node, ServiceTier.FLEX.wireName());
            var request = new CompletionRequest(requestId, user, asked.prompts().getFirst(), asked.parameters(), ServiceTier.FLEX);
            String model = asked.parameters().model();
            return new Reading.Asks(request, completion -> json.writeValueAsString(chat ? chat(model, completion) : text(model, completion)));
        } catch (OpenAiError refused) {
            return new Reading.Refused(failure(refused));
        }
    }

    private static Object text(String model, Completion done) {
        return new OpenAiController.CompletionsAnswer("cmpl-" + hex(done.requestId()), "text_completion", Instant.now().getEpochSecond(),
                model, List.of(new OpenAiController.Choice(done.text(), 0, null, OpenAiController.finishReason(done.finishReason()))),
                usage(done), ServiceTier.FLEX.wireName());
    }

    private static Object chat(String model, Completion done) {
        var choice = new OpenAiController.ChatChoice(0, new OpenAiController.Message("assistant", done.text(), null), null,
                OpenAiController.finishReason(done.finishReason()));
        return new OpenAiController.ChatAnswer("chatcmpl-" + hex(done.requestId()), "chat.completion", Instant.now().getEpochSecond(),
                model, List.of(choice), usage(done), ServiceTier.FLEX.wireName());
    }

    private static OpenAiController.Usage usage(Completion done) {
        return new OpenAiController.Usage(done.usage().promptTokens(), done.usage().completionTokens(), done.usage().totalTokens());
    }

    @Override
    public Answer failure(Throwable failure) {
        Failure answer = Failure.of(failure);
        return new Answer(answer.status().value(), json.writeValueAsString(OpenAiAdvice.body(answer)));
    }

    /** A line of the output or error file, as OpenAI's Batch API writes them. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record ResultLine(String id, @JsonProperty("custom_id") String customId, Response response, Object error) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Response(@JsonProperty("status_code") int statusCode, @JsonProperty("request_id") String requestId,
            @JsonRawValue String body) {}

    @Override
    public String resultLine(UUID requestId, String customId, Answer answer) {
        return json.writeValueAsString(new ResultLine("batch_req_" + hex(requestId), customId,
                new Response(answer.status(), requestId.toString(), answer.body()), null));
    }

    private static String hex(UUID id) {
        return id.toString().replace("-", "");
    }
}
