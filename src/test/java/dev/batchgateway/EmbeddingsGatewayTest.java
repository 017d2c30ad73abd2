package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.BadRequestException;
import com.openai.models.embeddings.CreateEmbeddingResponse;
import com.openai.models.embeddings.EmbeddingCreateParams;
import dev.batchgateway.worker.FakeVllm;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code POST /v1/embeddings} through the whole gateway, in front of a fake vLLM serving a chat model and a fake vLLM
 * serving an embedding model ({@code TASK=embed}), with a real PostgreSQL. Max-wait is long, so only a full batch of
 * 64 inputs leaves: every call here that reaches the worker carries 64 inputs, alone or with others.
 */
@GatewayApplicationTest(properties = {"gateway.worker.type=vllm", "gateway.worker.model=" + EmbeddingsGatewayTest.CHAT_MODEL,
                "gateway.batch.max-wait=30s", "gateway.embeddings.batch-size=64"})
class EmbeddingsGatewayTest {

    static final String CHAT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct";
    static final String EMBEDDING_MODEL = "BAAI/bge-small-en-v1.5";
    static final FakeVllm chat = new FakeVllm(CHAT_MODEL);
    static final FakeVllm embedder = new FakeVllm(EMBEDDING_MODEL);

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", chat::url);
        // all of a model's settings in one place (a list is bound from one source)
        registry.add("gateway.models[0].name", () -> EMBEDDING_MODEL);
        registry.add("gateway.models[0].type", () -> "vllm");
        registry.add("gateway.models[0].task", () -> "embed");
        registry.add("gateway.models[0].url", embedder::url);
    }

    @AfterAll
    static void stopServers() {
        chat.close();
        embedder.close();
    }

    @LocalServerPort
    int port;

    @Autowired
    JdbcClient jdbc;

    @Autowired
    GatewayClient gateway;

    private final JsonMapper json = JsonMapper.builder().build();
    private long user;

    @BeforeEach
    void newUser() {
        user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        embedder.server().resetRequests();
    }

    @Test
    void sixtyFourConcurrentCallsOfOneInputEachAreOneWorkerCallAndEachInputIsBilledExactly() throws Exception {
        // Given 64 inputs alike in size (8 bytes, 2 words each) and different in text
        List<String> inputs = IntStream.range(0, 64).mapToObj(i -> "input %02d".formatted(i)).toList();

        // When 64 callers of one user each ask for the embedding of one of them, at once
        List<HttpResponse<String>> responses = new ArrayList<>();
        try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<HttpResponse<String>>> calls = inputs.stream()
                    .map(input -> callers.submit(() -> gateway.post("/v1/embeddings", gateway.bearer(user),
                            json.writeValueAsString(Map.of("model", EMBEDDING_MODEL, "input", input)))))
                    .toList();
            for (var call : calls) {
                responses.add(call.get(60, TimeUnit.SECONDS));
            }
        }

        // Then the embedding server got exactly one call, carrying the 64 inputs
        assertThat(embedder.embeddingCalls()).singleElement()
                .satisfies(call -> assertThat(call).containsExactlyInAnyOrderElementsOf(inputs));
        assertThat(chat.embeddingCalls()).isEmpty();

        // And each caller got OpenAI's shape, with its own input's vector and its own tokens
        int tokensEach = FakeVllm.embeddingTokens("input 00");
        for (int i = 0; i < inputs.size(); i++) {
            assertThat(responses.get(i).statusCode()).as(responses.get(i).body()).isEqualTo(200);
            JsonNode answer = json.readTree(responses.get(i).body());
            assertThat(answer.get("object").asString()).isEqualTo("list");
            assertThat(answer.get("model").asString()).isEqualTo(EMBEDDING_MODEL);
            JsonNode data = answer.get("data");
            assertThat(data).hasSize(1);
            assertThat(data.get(0).get("object").asString()).isEqualTo("embedding");
            assertThat(data.get(0).get("index").asInt()).isZero();
            assertThat(floats(data.get(0).get("embedding")))
                    .containsExactly(FakeVllm.embedding(inputs.get(i), FakeVllm.EMBEDDING_DIMENSIONS));
            assertThat(answer.get("usage").get("prompt_tokens").asInt()).isEqualTo(tokensEach);
            assertThat(answer.get("usage").get("total_tokens").asInt()).isEqualTo(tokensEach);
        }

        // And the user has 64 usage rows, one per input, each billed exactly its tokens, prompt tokens only, served
        UsageRows.await(jdbc, user, 64);
        var rows = jdbc.sql("SELECT prompt_tokens, completion_tokens, model, outcome FROM token_usage WHERE user_id = ?")
                .param(user).query((row, n) -> List.of(row.getInt(1), row.getInt(2), row.getString(3), row.getString(4))).list();
        assertThat(rows).hasSize(64).allSatisfy(row -> assertThat(row).containsExactly(tokensEach, 0, EMBEDDING_MODEL, "served"));
    }

    @Test
    void theOpenAiSdkGetsFloatVectors() {
        // Given the official OpenAI SDK pointed at the gateway, and 64 inputs (a batch's worth)
        List<String> inputs = IntStream.range(0, 64).mapToObj(i -> "sdk float " + i).toList();

        // When it asks for their embeddings as floats, in 4 dimensions
        CreateEmbeddingResponse answer = sdk().embeddings().create(EmbeddingCreateParams.builder().model(EMBEDDING_MODEL)
                .inputOfArrayOfStrings(inputs).encodingFormat(EmbeddingCreateParams.EncodingFormat.FLOAT).dimensions(4).build());

        // Then it reads a vector per input, in order, and the usage summed
        assertThat(answer.model()).isEqualTo(EMBEDDING_MODEL);
        assertThat(answer.data()).hasSize(64);
        for (int i = 0; i < inputs.size(); i++) {
            assertThat(answer.data().get(i).index()).isEqualTo(i);
            assertThat(answer.data().get(i).embeddingValue().isFloats()).isTrue();
            assertThat(answer.data().get(i).embedding()).containsExactlyElementsOf(boxed(FakeVllm.embedding(inputs.get(i), 4)));
        }
        assertThat(answer.usage().promptTokens()).isEqualTo(inputs.stream().mapToInt(FakeVllm::embeddingTokens).sum());
        assertThat(answer.usage().totalTokens()).isEqualTo(answer.usage().promptTokens());
        // and the server was asked once, with the dimensions
        assertThat(embedder.embeddingCalls()).hasSize(1);
    }

    @Test
    void theOpenAiSdkDecodesBase64Vectors() {
        // Given the official OpenAI SDK, and 64 inputs
        List<String> inputs = IntStream.range(0, 64).mapToObj(i -> "sdk base64 " + i).toList();

        // When it asks for base64
        CreateEmbeddingResponse answer = sdk().embeddings().create(EmbeddingCreateParams.builder().model(EMBEDDING_MODEL)
                .inputOfArrayOfStrings(inputs).encodingFormat(EmbeddingCreateParams.EncodingFormat.BASE64).build());

        // Then the wire carried base64, which the SDK decodes to the same floats (little-endian float32, as OpenAI's)
        assertThat(answer.data()).hasSize(64);
        for (int i = 0; i < inputs.size(); i++) {
            assertThat(answer.data().get(i).embeddingValue().isBase64()).isTrue();
            assertThat(answer.data().get(i).embedding())
                    .containsExactlyElementsOf(boxed(FakeVllm.embedding(inputs.get(i), FakeVllm.EMBEDDING_DIMENSIONS)));
        }
    }

    @Test
    void theSdkSeesAChatModelAskedForEmbeddingsAsABadRequestNamingTheModel() {
        assertThatThrownBy(() -> sdk().embeddings().create(EmbeddingCreateParams.builder().model(CHAT_MODEL).input("hello").build()))
                .isInstanceOfSatisfying(BadRequestException.class, refused -> {
                    assertThat(refused.statusCode()).isEqualTo(400);
                    assertThat(refused.param()).hasValue("model");
                });
        assertThat(embedder.embeddingCalls()).isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            token ids              | {"model": "BAAI/bge-small-en-v1.5", "input": [1, 2, 3]}                         | input
            token arrays           | {"model": "BAAI/bge-small-en-v1.5", "input": [[1, 2], [3]]}                     | input
            no input               | {"model": "BAAI/bge-small-en-v1.5"}                                             | input
            an empty input         | {"model": "BAAI/bge-small-en-v1.5", "input": ""}                                | input
            an empty list          | {"model": "BAAI/bge-small-en-v1.5", "input": []}                                | input
            a number in the list   | {"model": "BAAI/bge-small-en-v1.5", "input": ["a", 7]}                          | input
            a bad encoding         | {"model": "BAAI/bge-small-en-v1.5", "input": "a", "encoding_format": "int8"}    | encoding_format
            zero dimensions        | {"model": "BAAI/bge-small-en-v1.5", "input": "a", "dimensions": 0}              | dimensions
            text dimensions        | {"model": "BAAI/bge-small-en-v1.5", "input": "a", "dimensions": "64"}           | dimensions
            an unknown field       | {"model": "BAAI/bge-small-en-v1.5", "input": "a", "truncate": true}             | truncate
            no model               | {"input": "a"}                                                                  | model
            a chat model           | {"model": "Qwen/Qwen2.5-1.5B-Instruct", "input": "a"}                           | model
            """)
    void aBadEmbeddingsRequestIsA400InOpenAisShapeNamingTheField(String what, String body, String param) {
        // When the request is sent
        var answer = gateway.post("/v1/embeddings", gateway.bearer(user), body);

        // Then it is refused with OpenAI's 400 naming the field, and nothing reaches a worker or is billed
        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(400);
        JsonNode error = json.readTree(answer.body()).get("error");
        assertThat(error.get("type").asString()).isEqualTo("invalid_request_error");
        assertThat(error.get("param").asString()).isEqualTo(param);
        assertThat(error.get("message").asString()).isNotBlank();
        assertThat(embedder.embeddingCalls()).isEmpty();
        assertThat(UsageRows.of(jdbc, user)).isZero();
    }

    @Test
    void anUnknownModelIs404AndAnEmbeddingModelAskedForCompletionsIs400NamingTheModel() {
        var unknown = gateway.post("/v1/embeddings", gateway.bearer(user), "{\"model\": \"nope\", \"input\": \"a\"}");
        assertThat(unknown.statusCode()).as(unknown.body()).isEqualTo(404);
        assertThat(json.readTree(unknown.body()).get("error").get("code").asString()).isEqualTo("model_not_found");

        for (String path : List.of("/v1/completions", "/v1/chat/completions")) {
            String body = path.equals("/v1/completions")
                    ? "{\"model\": \"" + EMBEDDING_MODEL + "\", \"prompt\": \"a\"}"
                    : "{\"model\": \"" + EMBEDDING_MODEL + "\", \"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}";
            var refused = gateway.post(path, gateway.bearer(user), body);
            assertThat(refused.statusCode()).as(path + ": " + refused.body()).isEqualTo(400);
            assertThat(json.readTree(refused.body()).get("error").get("param").asString()).isEqualTo("model");
        }
        var complete = gateway.post("/complete", gateway.bearer(user), "{\"model\": \"" + EMBEDDING_MODEL + "\", \"prompt\": \"a\"}");
        assertThat(complete.statusCode()).as(complete.body()).isEqualTo(400);
        assertThat(embedder.calls()).isEmpty();
        assertThat(embedder.embeddingCalls()).isEmpty();
    }

    @Test
    void theModelListHasBothModelsAndAnUnknownRouteNamesTheEmbeddingsRoute() {
        var models = gateway.send(java.net.http.HttpRequest.newBuilder(gateway.uri("/v1/models"))
                .header("Authorization", gateway.bearer(user)));
        assertThat(models.statusCode()).isEqualTo(200);
        List<String> ids = new ArrayList<>();
        json.readTree(models.body()).get("data").forEach(model -> ids.add(model.get("id").asString()));
        assertThat(ids).containsExactly(CHAT_MODEL, EMBEDDING_MODEL);

        var missing = gateway.post("/v1/embedding", gateway.bearer(user), "{}");
        assertThat(missing.statusCode()).isEqualTo(404);
        assertThat(json.readTree(missing.body()).get("error").get("message").asString()).contains("POST /v1/embeddings");
    }

    private OpenAIClient sdk() {
        return OpenAIOkHttpClient.builder().baseUrl("http://localhost:" + port + "/v1").apiKey(gateway.key(user)).maxRetries(0).build();
    }

    private static float[] floats(JsonNode numbers) {
        float[] floats = new float[numbers.size()];
        for (int i = 0; i < floats.length; i++) {
            floats[i] = numbers.get(i).floatValue();
        }
        return floats;
    }

    private static List<Float> boxed(float[] vector) {
        List<Float> boxed = new ArrayList<>(vector.length);
        for (float each : vector) {
            boxed.add(each);
        }
        return boxed;
    }
}
