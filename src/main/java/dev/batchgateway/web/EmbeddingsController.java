package dev.batchgateway.web;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.CompletionsApi;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.SchedulerPolicy;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.TokenCeilings;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.UserIds;
import jakarta.servlet.http.HttpServletRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.OptionalLong;
import java.util.UUID;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import tools.jackson.databind.JsonNode;

/**
 * OpenAI's {@code POST /v1/embeddings}, on the same {@link CompletionsApi} port as the completions: every input joins
 * the batcher as its own request, in the lane of its embedding model, where the inputs of many calls leave together in
 * one worker call (up to {@code GATEWAY_EMBEDDINGS_BATCH_SIZE}); each is admitted by the budgets (its UTF-8 bytes and an
 * allowance reserved), billed its prompt tokens in a usage row of its own, and answered in OpenAI's shape: {@code
 * {"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}}, the vectors as
 * numbers or, with {@code "encoding_format": "base64"}, as OpenAI's base64 of little-endian float32s. Errors are
 * OpenAI's ({@link OpenAiAdvice}).
 */
@RestController
class EmbeddingsController {

    private final CompletionsApi completions;
    private final Callers callers;
    private final EmbeddingsRequestReader reader;
    private final AnswerWait answerWait;

    EmbeddingsController(CompletionsApi completions, WebSettings settings, SchedulerPolicy policy, ServedModels served,
            Callers callers, TokenCeilings ceilings) {
        this.completions = completions;
        this.callers = callers;
        this.reader = new EmbeddingsRequestReader(
                new CompletionRequestReader(settings.maxPromptChars(), ceilings, served.names()), served);
        this.answerWait = AnswerWait.behind(policy.longestRequestTimeout());
    }

    record Embedding(String object, int index, Object embedding) {}

    record Usage(@JsonProperty("prompt_tokens") long promptTokens, @JsonProperty("total_tokens") long totalTokens) {}

    record EmbeddingsAnswer(String object, List<Embedding> data, String model, Usage usage) {}

    @PostMapping(path = "/v1/embeddings", produces = MediaType.APPLICATION_JSON_VALUE)
    DeferredResult<EmbeddingsAnswer> embeddings(Caller who, @RequestBody JsonNode body, HttpServletRequest http) {
        callers.requireKnown(who); // before the body is judged: who may not call learns nothing about it
        var asked = reader.read(body);
        long user = billedUser(who, body.get("user"));
        callers.mayUseModel(who, asked.model());
        http.setAttribute(RequestTracking.USER_ID, user);
        ServiceTier tier = CompletionRequestReader.serviceTier(null, callers.automaticTier(who));
        var parameters = GenerationParameters.embedding(asked.model());
        List<CompletionRequest> requests = asked.inputs().stream()
                .map(input -> new CompletionRequest(UUID.randomUUID(), user, input, parameters, tier))
                .toList();
        return WholeCall.answered(completions, answerWait, who, user, requests, http, embedded -> {
            List<Embedding> data = new ArrayList<>(embedded.size());
            long promptTokens = 0;
            for (int i = 0; i < embedded.size(); i++) {
                float[] vector = embedded.get(i).embedding();
                data.add(new Embedding("embedding", i, asked.base64() ? base64(vector) : vector));
                promptTokens += embedded.get(i).usage().promptTokens();
            }
            return new EmbeddingsAnswer("list", data, asked.model(), new Usage(promptTokens, promptTokens));
        });
    }

    /** OpenAI's base64 encoding of a vector: its float32s, little-endian, one after the other. */
    static String base64(float[] vector) {
        ByteBuffer bytes = ByteBuffer.allocate(vector.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(vector);
        return Base64.getEncoder().encodeToString(bytes.array());
    }

    /**
     * The user to bill, as on the other OpenAI endpoints: an API key's own user ({@code user} is then the caller's
     * end-user tag), or, with keys off, the user {@code user} names as a decimal string.
     */
    private long billedUser(Caller who, JsonNode user) {
        if (!(who instanceof Caller.Trusted)) {
            return callers.billedUser(who, OptionalLong.empty()).orElseThrow();
        }
        OptionalLong id = user != null && user.isString() ? UserIds.parse(user.stringValue()) : OptionalLong.empty();
        return id.orElseThrow(() -> OpenAiError.invalid("user",
                "user must name the user to bill: a decimal string from 1 to " + Long.MAX_VALUE + ", e.g. \"42\""));
    }
}
