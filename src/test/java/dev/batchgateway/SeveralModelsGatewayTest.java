package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.worker.FakeVllm;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
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

/**
 * Two models behind one gateway, each on its own vLLM: requests go to their model's server, usage rows name the model
 * that served them, and both show in /v1/models and readiness.
 */
@GatewayApplicationTest(properties = {"gateway.worker.type=vllm", "gateway.worker.model=chat-model", "gateway.batch.size=1",
                "gateway.batch.max-wait=0ms"})
class SeveralModelsGatewayTest {

    static final FakeVllm chat = new FakeVllm("chat-model");
    static final FakeVllm code = new FakeVllm("code-model");

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", chat::url);
        // a list is bound from one source: all of a model's settings go together
        registry.add("gateway.models[0].name", () -> "code-model");
        registry.add("gateway.models[0].type", () -> "vllm");
        registry.add("gateway.models[0].url", code::url);
    }

    @AfterAll
    static void stopServers() {
        chat.close();
        code.close();
    }

    @LocalServerPort
    int port;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();

    @Autowired
    GatewayClient gateway;
    private long user;

    @BeforeEach
    void connect() {
        user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    }

    @Test
    void eachRequestGoesToItsModelsServerAndIsBilledUnderThatModel() throws Exception {
        // When one request names the second model, one names the first, and one names none
        var forCode = gateway.complete(Map.of("prompt", "def fib", "user_id", user, "model", "code-model"));
        var forChat = gateway.complete(Map.of("prompt", "hello there", "user_id", user, "model", "chat-model"));
        var forDefault = gateway.complete(Map.of("prompt", "default please", "user_id", user));

        // Then each went to its model's server; no model means the first
        assertThat(List.of(forCode.statusCode(), forChat.statusCode(), forDefault.statusCode())).containsOnly(200);
        assertThat(code.calls()).containsExactly(List.of("def fib"));
        assertThat(chat.calls()).containsExactly(List.of("hello there"), List.of("default please"));

        // And the usage rows name the model that served them
        UsageRows.await(jdbc, user, 3);
        assertThat(jdbc.sql("SELECT model FROM token_usage WHERE user_id = ? ORDER BY model").param(user).query(String.class).list())
                .containsExactly("chat-model", "chat-model", "code-model");
    }

    @Test
    void anUnknownModelIsRefusedNamingTheServedOnes() {
        var answer = gateway.complete(Map.of("prompt", "hi", "user_id", user, "model", "gpt-4o"));

        assertThat(answer.statusCode()).isEqualTo(400);
        assertThat(answer.body()).contains("model must be one of the models this gateway serves: chat-model, code-model");
    }

    @Test
    void theModelListAndReadinessShowBothModels() throws Exception {
        var models = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/v1/models"))
                        .header("Authorization", gateway.bearer(1)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(json.readTree(models.body()).get("data").valueStream().map(model -> model.get("id").asString()))
                .containsExactly("chat-model", "code-model");

        JsonNode worker = json.readTree(gateway.get("/actuator/health/readiness").body()).at("/components/worker");
        assertThat(worker.get("status").asString()).isEqualTo("UP");
        assertThat(worker.at("/details/chat-model/status").asString()).isEqualTo("UP");
        assertThat(worker.at("/details/code-model/status").asString()).isEqualTo("UP");
        assertThat(worker.at("/details/code-model").get(code.url()).asString()).isEqualTo("UP");
    }
}
