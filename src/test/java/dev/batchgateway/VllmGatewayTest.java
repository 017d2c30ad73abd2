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
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The whole gateway on a random port in front of a fake vLLM (WireMock), with a real PostgreSQL. */
@GatewayApplicationTest(properties = {"gateway.worker.type=vllm", "gateway.worker.model=Qwen/Qwen2.5-1.5B-Instruct",
                "gateway.batch.size=8", "gateway.batch.max-wait=30s"})
class VllmGatewayTest {

    static final FakeVllm vllm = new FakeVllm("Qwen/Qwen2.5-1.5B-Instruct");

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", vllm::url);
    }

    @AfterAll
    static void stopVllm() {
        vllm.close();
    }

    @LocalServerPort
    int port;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();

    @Autowired
    GatewayClient gateway;

    @BeforeEach
    void connect() {
        vllm.server().resetRequests();
    }

    @Test
    void eightConcurrentRequestsAreOneVllmCallAndEachCallerIsBilledVllmsCountsForItsPrompt() throws Exception {
        // Given eight callers of one user, prompts with different word counts and first-word lengths
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        List<String> prompts = new ArrayList<>();
        for (int i = 1; i <= 8; i++) {
            prompts.add("w".repeat(i) + " tail".repeat(i));
        }

        // When they post at once, asking for at most 5 tokens
        List<HttpResponse<String>> responses = postAtOnce(prompts, user, 5);

        // Then vLLM got exactly one call carrying the eight prompts
        assertThat(vllm.calls()).singleElement().satisfies(call -> assertThat(call).containsExactlyInAnyOrderElementsOf(prompts));

        // And each caller got its own completion with vLLM's counts for its prompt
        for (int i = 0; i < 8; i++) {
            String prompt = prompts.get(i);
            assertThat(responses.get(i).statusCode()).as(responses.get(i).body()).isEqualTo(200);
            JsonNode answer = json.readTree(responses.get(i).body());
            assertThat(answer.get("completion").asString()).isEqualTo(prompt.toUpperCase());
            assertThat(answer.get("prompt_tokens").asInt()).isEqualTo(FakeVllm.promptTokens(prompt)).isEqualTo(i + 2);
            assertThat(answer.get("completion_tokens").asInt()).isEqualTo(FakeVllm.completionTokens(prompt, 5));
            assertThat(answer.get("finish_reason").asString()).isEqualTo(i + 1 >= 5 ? "length" : "stop");

            // And its usage row holds the same counts, under the configured model
            String requestId = answer.get("request_id").asString();
            awaitRow(requestId);
            var row = jdbc.sql("""
                            SELECT user_id, prompt_tokens, completion_tokens, total_tokens, model
                            FROM token_usage WHERE request_id = ?::uuid""")
                    .param(requestId)
                    .query((rs, n) -> List.of(rs.getLong(1), rs.getInt(2), rs.getInt(3), rs.getInt(4), rs.getString(5)))
                    .single();
            assertThat(row).containsExactly(user, FakeVllm.promptTokens(prompt), FakeVllm.completionTokens(prompt, 5),
                    FakeVllm.promptTokens(prompt) + FakeVllm.completionTokens(prompt, 5), "Qwen/Qwen2.5-1.5B-Instruct");
        }
    }

    @Test
    void oneTooLongPromptInABatchOfEightFailsOnlyItsCallerWith400NamingTheContextLengthAndTheSevenOthersAreServedAndBilled()
            throws Exception {
        // Given eight callers of one user posting at once, the fifth with a prompt longer than the model's context
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            prompts.add(i == 4 ? "long ".repeat(vllm.maxModelLen) : "prompt " + "x".repeat(i + 1));
        }
        List<HttpResponse<String>> responses = postAtOnce(prompts, user, 7);

        // Then the one with the long prompt gets 400, with vLLM's own words on the context length
        var refused = responses.get(4);
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(400);
        assertThat(refused.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        assertThat(json.readTree(refused.body()).get("detail").asString()).isEqualTo("the worker refused this request: "
                + FakeVllm.contextLengthMessage(7, vllm.maxModelLen, vllm.maxModelLen));

        // And the seven others get their completions, and exactly seven usage rows are written
        for (int i = 0; i < 8; i++) {
            if (i != 4) {
                assertThat(responses.get(i).statusCode()).as(responses.get(i).body()).isEqualTo(200);
                assertThat(json.readTree(responses.get(i).body()).get("completion").asString()).isEqualTo(prompts.get(i).toUpperCase());
            }
        }
        UsageRows.await(jdbc, user, 7);
        assertThat(UsageRows.of(jdbc, user)).isEqualTo(7);

        // And the re-sent prompts show in the metrics
        assertThat(gateway.get("/actuator/prometheus").body()).contains("gateway_worker_retries_total{reason=\"refused\"} 8.0");
    }

    @Test
    void readinessHasTheWorkerNextToTheUsageBufferAndLivenessStaysPlain() throws Exception {
        var readiness = gateway.get("/actuator/health/readiness");

        assertThat(readiness.statusCode()).as(readiness.body()).isEqualTo(200);
        JsonNode components = json.readTree(readiness.body()).get("components");
        assertThat(components.get("worker").get("status").asString()).isEqualTo("UP");
        assertThat(components.get("usageLedger").get("status").asString()).isEqualTo("UP");
        assertThat(components.has("db")).as("an away database is carried by the usage buffer, not a readiness failure").isFalse();
        assertThat(components.get("readinessState").get("status").asString()).isEqualTo("UP");

        var health = gateway.get("/health");
        assertThat(health.body()).isEqualTo("ok");
    }

    /** Posts every prompt at once, one caller each, and returns the answers in prompt order. */
    private List<HttpResponse<String>> postAtOnce(List<String> prompts, long user, int maxTokens) throws Exception {
        List<HttpResponse<String>> responses = new ArrayList<>();
        try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<HttpResponse<String>>> calls = prompts.stream()
                    .map(prompt -> callers.submit(() -> gateway.complete(Map.of("prompt", prompt, "user_id", user, "max_tokens", maxTokens))))
                    .toList();
            for (var call : calls) {
                responses.add(call.get(30, TimeUnit.SECONDS));
            }
        }
        return responses;
    }

    private void awaitRow(String requestId) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (jdbc.sql("SELECT count(*) FROM token_usage WHERE request_id = ?::uuid").param(requestId).query(Long.class).single() < 1) {
            assertThat(System.nanoTime()).as("row written within 10 s").isLessThan(deadline);
            Thread.sleep(20);
        }
    }
}
