package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.worker.FakeVllm;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The whole gateway, configured for "an OpenAI-compatible server", in front of a fake that behaves as vLLM, llama.cpp,
 * SGLang or TGI in turn (one Spring context: each test makes the fake a server, and a readiness check makes the
 * gateway find out which). Every caller of a batch is billed its own prompt's counts, one prompt over the context
 * fails alone, and a server that runs another model or refuses the key takes the gateway out of readiness and gets
 * nothing sent.
 */
@GatewayApplicationTest(properties = {"gateway.worker.type=openai", "gateway.worker.model=" + DialectsGatewayTest.MODEL,
                "gateway.batch.size=8", "gateway.batch.max-wait=3s"})
class DialectsGatewayTest {

    static final String MODEL = "models/stories260K.gguf";
    static final FakeVllm server = new FakeVllm(MODEL);

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", server::url);
    }

    @AfterAll
    static void stopServer() {
        server.close();
    }

    @Autowired
    JdbcClient jdbc;

    @Autowired
    GatewayClient gateway;

    private final JsonMapper json = JsonMapper.builder().build();

    @BeforeEach
    void resetTheServer() {
        server.reset();
    }

    /** Makes the fake this server and has the gateway's readiness check find it out; returns the readiness answer. */
    private HttpResponse<String> become(FakeVllm.Kind kind) throws Exception {
        server.kind = kind;
        server.maxClientBatchSize = 8;
        var readiness = gateway.get("/actuator/health/readiness");
        server.server().resetRequests();
        return readiness;
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void eightConcurrentCallersAreEachBilledTheirOwnPromptsCountsInOneUpstreamCallEvenAfterALoneOne(FakeVllm.Kind kind)
            throws Exception {
        assertThat(become(kind).statusCode()).isEqualTo(200);
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);

        // Given, on llama.cpp (whose lone answers once switched the gateway to one call per prompt for good), a lone
        // caller served first (it waits out the batch's 3 s: the other servers skip it)
        int lones = kind == FakeVllm.Kind.LLAMA_CPP ? 1 : 0;
        if (lones == 1) {
            var lone = gateway.complete(Map.of("prompt", "alone here", "user_id", user, "max_tokens", 5));
            assertThat(lone.statusCode()).as(lone.body()).isEqualTo(200);
            assertThat(json.readTree(lone.body()).get("prompt_tokens").asInt()).isEqualTo(2);
        }

        // When eight callers post at once, prompts with different counts
        List<String> prompts = new ArrayList<>();
        for (int i = 1; i <= 8; i++) {
            prompts.add("w".repeat(i) + " tail".repeat(i));
        }
        List<HttpResponse<String>> responses = postAtOnce(prompts, user, 5);

        // Then the server got one call of the eight prompts (TGI: one call per prompt, its list has no per-prompt usage)
        List<List<String>> calls = server.calls().subList(lones, server.calls().size());
        if (kind == FakeVllm.Kind.TGI) {
            assertThat(calls).hasSize(8).allSatisfy(call -> assertThat(call).hasSize(1));
        } else {
            assertThat(calls).singleElement().satisfies(call -> assertThat(call).containsExactlyInAnyOrderElementsOf(prompts));
        }

        // And each caller got its completion and its own prompt's counts, and a usage row with them
        for (int i = 0; i < 8; i++) {
            String prompt = prompts.get(i);
            assertThat(responses.get(i).statusCode()).as(responses.get(i).body()).isEqualTo(200);
            JsonNode answer = json.readTree(responses.get(i).body());
            assertThat(answer.get("completion").asString()).isEqualTo(prompt.toUpperCase());
            assertThat(answer.get("prompt_tokens").asInt()).isEqualTo(FakeVllm.promptTokens(prompt));
            assertThat(answer.get("completion_tokens").asInt()).isEqualTo(FakeVllm.completionTokens(prompt, 5));
        }
        UsageRows.await(jdbc, user, 8 + lones);
        long promptTokens = jdbc.sql("SELECT sum(prompt_tokens) FROM token_usage WHERE user_id = ?").param(user).query(Long.class).single();
        assertThat(promptTokens).isEqualTo(2 * lones + prompts.stream().mapToInt(FakeVllm::promptTokens).sum());
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void aListWithOnePromptOverTheContextGivesSevenAnswersAndOne400(FakeVllm.Kind kind) throws Exception {
        become(kind);
        server.maxModelLen = 64;
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            prompts.add(i == 2 ? "long ".repeat(64) : "prompt " + "x".repeat(i + 1));
        }

        List<HttpResponse<String>> responses = postAtOnce(prompts, user, 7);

        for (int i = 0; i < 8; i++) {
            assertThat(responses.get(i).statusCode()).as(responses.get(i).body()).isEqualTo(i == 2 ? 400 : 200);
        }
        assertThat(json.readTree(responses.get(2).body()).get("detail").asString())
                .isEqualTo("the worker refused this request: " + server.contextMessage(7, 64));
        UsageRows.await(jdbc, user, 7);
        assertThat(UsageRows.of(jdbc, user)).isEqualTo(7);
    }

    @Test
    void aServerRunningAnotherModelTakesReadinessDownAndCallersGet503WithNothingSentOrBilled() throws Exception {
        // Given llama.cpp, which answers whatever model is asked for, running another model
        server.servedModel = "models/other.gguf";
        var readiness = become(FakeVllm.Kind.LLAMA_CPP);

        // Then readiness is down, naming the model it serves
        assertThat(readiness.statusCode()).as(readiness.body()).isEqualTo(503);
        assertThat(readiness.body()).contains("model " + MODEL + " is not served by worker 1");

        // And a caller gets 503, nothing reached the server, nothing was billed
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        var refused = gateway.complete(Map.of("prompt", "hello", "user_id", user));
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
        assertThat(server.calls()).isEmpty();
        assertThat(UsageRows.of(jdbc, user)).isZero();
    }

    @Test
    void aServerThatWantsAKeyTheGatewayLacksTakesReadinessDownThoughItsHealthAndModelListAreOpen() throws Exception {
        // Given llama.cpp started with --api-key, and a gateway given none
        server.apiKey = "sk-the-server-wants-this";
        var readiness = become(FakeVllm.Kind.LLAMA_CPP);

        assertThat(readiness.statusCode()).as(readiness.body()).isEqualTo(503);
        assertThat(readiness.body()).contains("refused the gateway's credentials (HTTP 401)");
        var refused = gateway.complete(Map.of("prompt", "hello", "user_id", 7));
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
        assertThat(server.calls()).isEmpty();
    }

    /** Posts every prompt at once, one caller each, and returns the answers in prompt order. */
    private List<HttpResponse<String>> postAtOnce(List<String> prompts, long user, int maxTokens) throws Exception {
        List<HttpResponse<String>> responses = new ArrayList<>();
        try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<HttpResponse<String>>> calls = prompts.stream()
                    .map(prompt -> callers.submit(() -> gateway.complete(Map.of("prompt", prompt, "user_id", user, "max_tokens", maxTokens))))
                    .toList();
            for (var call : calls) {
                responses.add(call.get(60, TimeUnit.SECONDS));
            }
        }
        return responses;
    }
}
