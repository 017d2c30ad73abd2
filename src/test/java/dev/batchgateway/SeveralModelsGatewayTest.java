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
        // the fakes serve the whole class: only the calls made here count
        int codeBefore = code.calls().size();
        int chatBefore = chat.calls().size();

        // When one request names the second model, one names the first, and one names none
        var forCode = gateway.complete(Map.of("prompt", "def fib", "user_id", user, "model", "code-model"));
        var forChat = gateway.complete(Map.of("prompt", "hello there", "user_id", user, "model", "chat-model"));
        var forDefault = gateway.complete(Map.of("prompt", "default please", "user_id", user));

        // Then each went to its model's server; no model means the first
        assertThat(List.of(forCode.statusCode(), forChat.statusCode(), forDefault.statusCode())).containsOnly(200);
        assertThat(code.calls().subList(codeBefore, code.calls().size())).containsExactly(List.of("def fib"));
        assertThat(chat.calls().subList(chatBefore, chat.calls().size()))
                .containsExactly(List.of("hello there"), List.of("default please"));

        // And the usage rows name the model that served them
        UsageRows.await(jdbc, user, 3);
        assertThat(jdbc.sql("SELECT model FROM token_usage WHERE user_id = ? ORDER BY model").param(user).query(String.class).list())
                .containsExactly("chat-model", "chat-model", "code-model");
    }

    @Test
    void aKeyForOneModelIsServedThereAndRefusedTheOtherWith403NamingIt() throws Exception {
        // Given a key for the code model only
        var created = gateway.admin("POST", "/admin/keys", """
                {"user_id": %d, "name": "code only", "models": ["code-model"]}""".formatted(user));
        assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
        assertThat(json.readTree(created.body()).get("models").valueStream().map(JsonNode::asString)).containsExactly("code-model");
        String key = "Bearer " + json.readTree(created.body()).get("key").asString();
        int chatCompletions = chat.calls().size();
        int chatChats = chat.chats().size();

        // When it asks for the chat model: on /complete by name and by default, and on /v1/chat/completions
        var named = gateway.post("/complete", key, """
                {"prompt": "hello", "model": "chat-model"}""");
        var byDefault = gateway.post("/complete", key, """
                {"prompt": "hello"}""");
        var openAi = gateway.post("/v1/chat/completions", key, """
                {"model": "chat-model", "messages": [{"role": "user", "content": "hello"}]}""");

        // Then each is 403 naming the model, in each API's own error shape, and the chat model's server saw nothing
        assertThat(List.of(named.statusCode(), byDefault.statusCode(), openAi.statusCode())).containsOnly(403);
        String refusal = "this API key may not use the model 'chat-model': it may use code-model";
        assertThat(json.readTree(named.body()).get("detail").asString()).isEqualTo(refusal);
        assertThat(json.readTree(byDefault.body()).get("detail").asString()).isEqualTo(refusal);
        JsonNode error = json.readTree(openAi.body()).get("error");
        assertThat(error.get("message").asString()).isEqualTo(refusal);
        assertThat(error.get("param").asString()).isEqualTo("model");
        assertThat(error.get("code").asString()).isEqualTo("model_not_allowed");
        assertThat(chat.calls()).hasSize(chatCompletions);
        assertThat(chat.chats()).hasSize(chatChats);

        // And its own model serves it on both APIs, and /v1/models lists only that model
        assertThat(gateway.post("/complete", key, """
                {"prompt": "def scoped", "model": "code-model"}""").statusCode()).isEqualTo(200);
        assertThat(gateway.post("/v1/chat/completions", key, """
                {"model": "code-model", "messages": [{"role": "user", "content": "scoped"}]}""").statusCode()).isEqualTo(200);
        var models = gateway.send(HttpRequest.newBuilder(gateway.uri("/v1/models")).header("Authorization", key));
        assertThat(json.readTree(models.body()).get("data").valueStream().map(model -> model.get("id").asString()))
                .containsExactly("code-model");

        // And one model is found as the list shows it: its own, not the other, which is not found for this key
        var own = gateway.send(HttpRequest.newBuilder(gateway.uri("/v1/models/code-model")).header("Authorization", key));
        assertThat(own.statusCode()).as(own.body()).isEqualTo(200);
        assertThat(json.readTree(own.body())).isEqualTo(json.readTree(models.body()).get("data").get(0));
        var other = gateway.send(HttpRequest.newBuilder(gateway.uri("/v1/models/chat-model")).header("Authorization", key));
        assertThat(other.statusCode()).as(other.body()).isEqualTo(404);
        assertThat(json.readTree(other.body()).at("/error/code").asString()).isEqualTo("model_not_found");
        assertThat(json.readTree(other.body()).at("/error/param").asString()).isEqualTo("model");
        var anyKey = gateway.send(HttpRequest.newBuilder(gateway.uri("/v1/models/chat-model")).header("Authorization", gateway.bearer(user)));
        assertThat(anyKey.statusCode()).as("a key for every model finds it: " + anyKey.body()).isEqualTo(200);
    }

    @Test
    void aKeyCannotBeIssuedForAModelNotServed() {
        var refused = gateway.admin("POST", "/admin/keys", """
                {"user_id": %d, "name": "typo", "models": ["code-model", "code-modle", "gpt-4o"]}""".formatted(user));

        assertThat(refused.statusCode()).isEqualTo(400);
        assertThat(json.readTree(refused.body()).get("detail").asString())
                .isEqualTo("models not served by this gateway: code-modle, gpt-4o; it serves chat-model, code-model");
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
