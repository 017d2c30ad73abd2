package dev.batchgateway.keys;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.GatewayApplicationTest;
import dev.batchgateway.GatewayClient;
import dev.batchgateway.SimulatedGatewayTest;
import dev.batchgateway.TestGateway;
import dev.batchgateway.UsageRows;
import dev.batchgateway.identity.ApiKeys;
import java.io.ByteArrayOutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.boot.test.web.server.LocalManagementPort;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.SmartLifecycle;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * API keys on the whole gateway, over real HTTP and a real PostgreSQL: the admin API, who may call what, one 401 for
 * every bad credential, revocation reaching a second instance on the same database, and secrets kept out of the logs.
 */
@ExtendWith(OutputCaptureExtension.class)
// settings of its own, so that no other test class shares (and Spring's test context cache pauses and resumes) this
// context: a paused gateway does not start its scheduler again
@SimulatedGatewayTest
class ApiKeysGatewayTest {

    private static final String ADMIN = "Bearer " + GatewayApplicationTest.ADMIN_TOKEN;
    private static final String UNAUTHENTICATED = "a valid API key is required: send Authorization: Bearer <key>";
    private static final Duration REVOKED_EVERYWHERE_WITHIN = Duration.ofSeconds(5);

    @LocalServerPort
    int port;

    @LocalManagementPort
    int managementPort;

    @Autowired
    JdbcClient jdbc;

    @Autowired
    ApiKeys apiKeys;

    private final HttpClient http = HttpClient.newHttpClient();
    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
    private GatewayClient gateway;

    @BeforeEach
    void connect() {
        gateway = new GatewayClient(port, managementPort);
    }

    @Test
    void aKeyIsCreatedUsedListedWithoutItsSecretAndRevokedOnEveryInstanceWithinFiveSeconds(CapturedOutput output)
            throws Exception {
        // Given a second instance of the gateway on the same database
        try (var second = anotherInstance().start()) {
            int secondPort = Integer.parseInt(second.getEnvironment().getProperty("local.server.port"));
            assertThat(output.getOut()).as("the second instance warmed its key cache before opening its port")
                    .containsPattern("key cache warmed with \\d+ key\\(s\\) in \\d+ ms");
            assertThat(second.getBean("keyCacheWarmUp", SmartLifecycle.class).getPhase())
                    .isLessThan(second.getBean("webServerStartStop", SmartLifecycle.class).getPhase());

            // When the operator creates a key
            var created = send(port, "POST", "/admin/keys", ADMIN, "{\"user_id\": " + user + ", \"name\": \"ci\"}");

            // Then the answer holds the secret, once
            assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
            JsonNode key = json.readTree(created.body());
            String secret = key.get("key").asString();
            String id = key.get("id").asString();
            assertThat(secret).matches("bg_[A-Za-z0-9_-]{43}");
            assertThat(UUID.fromString(id)).isNotNull();
            assertThat(key.get("user_id").asLong()).isEqualTo(user);
            assertThat(key.get("name").asString()).isEqualTo("ci");
            assertThat(key.get("created_at").asString()).isNotBlank();

            // When it is used on both instances, without a user_id in the body
            var first = complete(port, "Bearer " + secret, "{\"prompt\": \"one two\"}");
            var other = complete(secondPort, "Bearer " + secret, "{\"prompt\": \"three four\", \"user_id\": " + user + "}");

            // Then both are served and billed to the key's user
            assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
            assertThat(other.statusCode()).as(other.body()).isEqualTo(200);
            UsageRows.await(jdbc, user, 2);

            // When the keys of the user are listed, after the last-used times were written
            apiKeys.writeLastUse();
            var listed = send(port, "GET", "/admin/keys?user_id=" + user, ADMIN, null);

            // Then the key is there with its prefix and last use, never its secret
            assertThat(listed.statusCode()).as(listed.body()).isEqualTo(200);
            assertThat(listed.body()).doesNotContain(secret).doesNotContain("\"key\"");
            JsonNode listedKey = json.readTree(listed.body()).get("keys").get(0);
            assertThat(json.readTree(listed.body()).get("keys").size()).isEqualTo(1);
            assertThat(listedKey.get("id").asString()).isEqualTo(id);
            assertThat(listedKey.get("prefix").asString()).isEqualTo(secret.substring(0, 11));
            assertThat(listedKey.get("user_id").asLong()).isEqualTo(user);
            assertThat(listedKey.get("name").asString()).isEqualTo("ci");
            assertThat(listedKey.get("revoked_at").isNull()).isTrue();
            assertThat(listedKey.get("last_used_at").isNull()).as("last used, written in a batch").isFalse();
            assertThat(jdbc.sql("SELECT count(*) FROM api_key WHERE digest = sha256(convert_to(?, 'UTF8')) AND id = ?::uuid")
                    .params(secret, id).query(Long.class).single()).as("stored as its SHA-256 digest").isEqualTo(1);

            // When the key is revoked
            var revoked = send(port, "DELETE", "/admin/keys/" + id, ADMIN, null);
            long revokedAt = System.nanoTime();

            // Then this instance refuses it at once, and the second one within five seconds
            assertThat(revoked.statusCode()).isEqualTo(204);
            assertUnauthenticated(complete(port, "Bearer " + secret, "{\"prompt\": \"again\"}"));
            HttpResponse<String> refused;
            do {
                refused = complete(secondPort, "Bearer " + secret, "{\"prompt\": \"again\"}");
                if (refused.statusCode() != 200) {
                    break;
                }
                Thread.sleep(50);
            } while (System.nanoTime() - revokedAt < REVOKED_EVERYWHERE_WITHIN.toNanos());
            System.out.println("[measured] revoked key refused by the second instance after "
                    + Duration.ofNanos(System.nanoTime() - revokedAt).toMillis() + " ms");
            assertUnauthenticated(refused);
            assertThat(json.readTree(send(port, "GET", "/admin/keys?user_id=" + user, ADMIN, null).body())
                    .at("/keys/0/revoked_at").isNull()).isFalse();

            // And neither the key nor the admin token ever reached a log line
            assertThat(output.getAll()).doesNotContain(secret).doesNotContain(GatewayApplicationTest.ADMIN_TOKEN);
        }
    }

    @Test
    void aKeyCompletesOnlyForItsOwnUserAndReadsOnlyItsOwnUsage() throws Exception {
        String mine = gateway.bearer(user);

        var othersId = complete(port, mine, "{\"prompt\": \"hi\", \"user_id\": " + (user - 1) + "}");
        assertThat(othersId.statusCode()).as(othersId.body()).isEqualTo(403);
        assertThat(othersId.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        assertThat(json.readTree(othersId.body()).get("detail").asString()).contains("is not the user of this API key");

        var othersUsage = send(port, "GET", "/usage/" + (user - 1), mine, null);
        assertThat(othersUsage.statusCode()).as(othersUsage.body()).isEqualTo(403);
        assertThat(othersUsage.headers().firstValue("Content-Type")).hasValue("application/problem+json");

        assertThat(send(port, "GET", "/usage/" + user, mine, null).statusCode()).isEqualTo(200);
        assertThat(send(port, "GET", "/usage/" + (user - 1), ADMIN, null).statusCode()).as("the admin token reads any").isEqualTo(200);
        assertThat(complete(port, ADMIN, "{\"prompt\": \"hi\", \"user_id\": 1}").statusCode()).isEqualTo(403);
        assertThat(send(port, "POST", "/admin/keys", mine, "{\"user_id\": " + user + ", \"name\": \"x\"}").statusCode())
                .as("a user's key manages no keys").isEqualTo(401);
    }

    @Test
    void theOpenAiApiAsksForAKeyInOpenAisOwnWordsAndBillsTheKeysUser() throws Exception {
        // When the OpenAI-compatible API is called without a key
        var noKey = send(port, "POST", "/v1/completions", null, "{\"model\": \"simulated\", \"prompt\": \"hi\"}");

        // Then it is OpenAI's 401, which the SDKs turn into their AuthenticationError
        assertThat(noKey.statusCode()).as(noKey.body()).isEqualTo(401);
        assertThat(noKey.headers().firstValue("WWW-Authenticate")).hasValue("Bearer realm=\"batch-gateway\"");
        assertThat(json.readTree(noKey.body()).at("/error/code").asString()).isEqualTo("invalid_api_key");
        assertThat(send(port, "GET", "/v1/models", null, null).statusCode()).isEqualTo(401);

        // When it is called with a key, and OpenAI's user field names someone else
        var served = send(port, "POST", "/v1/completions", gateway.bearer(user),
                "{\"model\": \"simulated\", \"prompt\": \"one two\", \"user\": \"" + (user - 1) + "\"}");

        // Then the key's user is billed: the field is the caller's own tag, not whom to bill
        assertThat(served.statusCode()).as(served.body()).isEqualTo(200);
        UsageRows.await(jdbc, user, 1);
        assertThat(UsageRows.of(jdbc, user - 1)).isZero();
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @ValueSource(strings = {"(none)", "no scheme", "Basic", "Bearer", "Bearer ", "Bearer 600 characters", "unknown key", "two headers",
            "Bearer bg_short", "bearer lower-case scheme of an unknown key"})
    void everyMissingMalformedOrUnknownKeyGetsTheSame401(String kind) throws Exception {
        String unknown = "bg_" + "A".repeat(43);
        var request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/complete"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"hi\"}"));
        switch (kind) {
            case "(none)" -> {}
            case "no scheme" -> request.header("Authorization", gateway.key(user));
            case "Basic" -> request.header("Authorization", "Basic dXNlcjpwYXNzd29yZA==");
            case "Bearer", "Bearer " -> request.header("Authorization", kind);
            case "Bearer 600 characters" -> request.header("Authorization", "Bearer bg_" + "x".repeat(600));
            case "unknown key" -> request.header("Authorization", "Bearer " + unknown);
            case "two headers" -> request.header("Authorization", gateway.bearer(user)).header("Authorization", gateway.bearer(user));
            case "Bearer bg_short" -> request.header("Authorization", kind);
            default -> request.header("Authorization", "bearer " + unknown);
        }
        assertUnauthenticated(http.send(request.build(), HttpResponse.BodyHandlers.ofString()));
    }

    @Test
    void aTenKilobyteAuthorizationHeaderIsA400ProblemFromTheServerItself() throws Exception {
        // Given a header larger than the web server's 8 KiB limit: refused before the gateway's code runs, still as a problem
        var response = http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/complete"))
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer bg_" + "x".repeat(10 * 1024))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"hi\"}"))
                .build(), HttpResponse.BodyHandlers.ofString());

        assertProblem(response, 400);
        assertThat(json.readTree(response.body()).get("status").asInt()).isEqualTo(400);
    }

    @Test
    void aNonAsciiAuthorizationHeaderGetsThe401Too() throws Exception {
        // Given header bytes that are not ASCII (an HTTP client refuses to send them, so they go over a raw socket)
        byte[] body = "{\"prompt\": \"hi\"}".getBytes(StandardCharsets.UTF_8);
        var raw = new ByteArrayOutputStream();
        raw.writeBytes(("POST /complete HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.length + "\r\nAuthorization: Bearer bg_").getBytes(StandardCharsets.US_ASCII));
        raw.writeBytes("ünïcødé-😀".getBytes(StandardCharsets.UTF_8));
        raw.writeBytes("\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        raw.writeBytes(body);

        String answer;
        try (var socket = new Socket("localhost", port)) {
            socket.setSoTimeout(30_000);
            socket.getOutputStream().write(raw.toByteArray());
            socket.getOutputStream().flush();
            answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        }

        assertThat(answer).startsWith("HTTP/1.1 401");
        assertThat(answer).containsIgnoringCase("Content-Type: application/problem+json")
                .containsIgnoringCase("WWW-Authenticate: Bearer realm=\"batch-gateway\"")
                .contains(UNAUTHENTICATED);
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @ValueSource(strings = {"", "null", "[]", "\"x\"", "{}", "{\"user_id\": 1}", "{\"name\": \"ci\"}",
            "{\"user_id\": \"42\", \"name\": \"ci\"}", "{\"user_id\": 0, \"name\": \"ci\"}", "{\"user_id\": 1.5, \"name\": \"ci\"}",
            "{\"user_id\": 9223372036854775808, \"name\": \"ci\"}", "{\"user_id\": 1, \"name\": \"\"}",
            "{\"user_id\": 1, \"name\": 7}", "{\"user_id\": 1, \"name\": \"ci\", \"scope\": \"all\"}",
            "{\"user_id\": 1, \"name\": \"\\u0000\"}", "{\"user_id\": 1, \"name\": \"\\ud800\"}", "{\"user_id\": 1",
            "{\"user_id\": 1, \"user_id\": 2, \"name\": \"ci\"}"})
    void aMalformedAdminBodyIsA400Problem(String body) throws Exception {
        var response = send(port, "POST", "/admin/keys", ADMIN, body);

        assertThat(response.statusCode()).as(response.body()).isEqualTo(400);
        assertThat(response.headers().firstValue("Content-Type")).hasValue("application/problem+json");
    }

    @Test
    void badAndUnknownKeyIdsAndListingsAre4xxProblems() throws Exception {
        assertProblem(send(port, "POST", "/admin/keys", ADMIN, "{\"user_id\": 1, \"name\": \"" + "n".repeat(101) + "\"}"), 400);
        assertProblem(send(port, "DELETE", "/admin/keys/not-a-uuid", ADMIN, null), 400);
        assertProblem(send(port, "DELETE", "/admin/keys/" + UUID.randomUUID(), ADMIN, null), 404);
        assertProblem(send(port, "DELETE", "/admin/keys/" + "9".repeat(400), ADMIN, null), 400);
        assertProblem(send(port, "GET", "/admin/keys", ADMIN, null), 400);
        assertProblem(send(port, "GET", "/admin/keys?user_id=abc", ADMIN, null), 400);
        assertProblem(send(port, "GET", "/admin/keys?user_id=0", ADMIN, null), 400);
        var wrongToken = send(port, "GET", "/admin/keys?user_id=1", "Bearer " + "w".repeat(40), null);
        assertProblem(wrongToken, 401);
        assertThat(wrongToken.headers().firstValue("WWW-Authenticate")).hasValue("Bearer realm=\"batch-gateway\"");
        assertProblem(send(port, "GET", "/admin/keys?user_id=1", null, null), 401);
        assertProblem(send(port, "POST", "/admin/keys", null, "{\"user_id\": \"not even\""), 401);
        assertProblem(send(port, "POST", "/admin/keys", ADMIN, "{\"user_id\": 1, \"name\": \"" + "x".repeat(1_100_000) + "\"}"), 413);
    }

    @Test
    void aSecondAdminTokenWithSpacesAndPunctuationManagesKeysOverHttp(CapturedOutput output) throws Exception {
        // Given the gateway configured with two admin tokens, the second with spaces, '!', quotes, '#', ':' and '='
        String rotated = "Bearer " + GatewayApplicationTest.ROTATED_ADMIN_TOKEN;

        // When the operator creates and revokes a key with the second one, over HTTP as any client sends it
        var created = send(port, "POST", "/admin/keys", rotated, "{\"user_id\": " + user + ", \"name\": \"rotation\"}");
        assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
        String id = json.readTree(created.body()).get("id").asString();

        // Then both tokens are the operator's, a token one character off is nobody's
        assertThat(send(port, "GET", "/admin/keys?user_id=" + user, rotated, null).statusCode()).isEqualTo(200);
        assertThat(send(port, "DELETE", "/admin/keys/" + id, ADMIN, null).statusCode()).isEqualTo(204);
        assertProblem(send(port, "GET", "/admin/keys?user_id=" + user, rotated.replace("!", "?"), null), 401);

        // And neither token reaches a log line
        assertThat(output.getAll()).doesNotContain(GatewayApplicationTest.ROTATED_ADMIN_TOKEN)
                .doesNotContain(GatewayApplicationTest.ADMIN_TOKEN);
    }

    @Test
    void prometheusIsOnTheManagementPortOnly() throws Exception {
        var onTheApiPort = send(port, "GET", "/actuator/prometheus", ADMIN, null);
        var onTheManagementPort = send(managementPort, "GET", "/actuator/prometheus", null, null);

        assertThat(onTheApiPort.statusCode()).isEqualTo(404);
        assertThat(onTheApiPort.body()).doesNotContain("gateway_");
        assertThat(onTheManagementPort.statusCode()).isEqualTo(200);
        assertThat(onTheManagementPort.body()).contains("gateway_requests_total");
        assertThat(send(port, "GET", "/actuator/health/readiness", null, null).statusCode()).isEqualTo(404);
        assertThat(send(port, "GET", "/health", null, null).body()).isEqualTo("ok");
    }

    @Test
    void theManagementPortListensOnTheLoopbackAddressOnlyByDefault() {
        // Given 127.0.0.2, another address of Linux's loopback interface: a port bound to all interfaces answers there
        // too, as it would on the machine's network address (the API port, which must)
        assertThat(GatewayClient.accepts("127.0.0.2", port)).as("the API port on 127.0.0.2: bound to all interfaces").isTrue();

        // Then the management port, which asks for no token, answers on 127.0.0.1 and nowhere else
        // (MANAGEMENT_SERVER_ADDRESS opens it: KubernetesManifestsTest)
        assertThat(GatewayClient.accepts("127.0.0.1", managementPort)).as("the management port on 127.0.0.1").isTrue();
        assertThat(GatewayClient.accepts("127.0.0.2", managementPort)).as("the management port on 127.0.0.2").isFalse();
    }

    @Test
    void withoutKeysTheBodysUserIsTrustedAndWithoutATokenTheAdminApiIsDisabled(CapturedOutput output) throws Exception {
        // Given a gateway with GATEWAY_AUTH=none and no admin token
        try (var trusting = anotherInstance().with("gateway.identity.mode", "none").without("gateway.identity.admin-token").start()) {
            int trustingPort = Integer.parseInt(trusting.getEnvironment().getProperty("local.server.port"));

            // Then it said so at start-up, in one line
            assertThat(output.getAll()).containsOnlyOnce("GATEWAY_AUTH=none: API keys are off");

            // When a caller posts without credentials, naming its user
            var served = complete(trustingPort, null, "{\"prompt\": \"trust me\", \"user_id\": " + user + "}");

            // Then it is served and billed as today, and usage is read without credentials
            assertThat(served.statusCode()).as(served.body()).isEqualTo(200);
            UsageRows.await(jdbc, user, 1);
            assertThat(send(trustingPort, "GET", "/usage/" + user, null, null).statusCode()).isEqualTo(200);
            assertProblem(complete(trustingPort, null, "{\"prompt\": \"who am I\"}"), 400);

            // And on /v1 the user field, a decimal string, names the user to bill, and the tier is the request's
            var flex = send(trustingPort, "POST", "/v1/completions", null, """
                    {"model": "simulated", "prompt": "trust me", "user": "%d", "service_tier": "flex"}""".formatted(user));
            var auto = send(trustingPort, "POST", "/v1/chat/completions", null, """
                    {"model": "simulated", "messages": [{"role": "user", "content": "hi"}], "user": "%d", "service_tier": "auto"}"""
                    .formatted(user));
            assertThat(flex.statusCode()).as(flex.body()).isEqualTo(200);
            assertThat(json.readTree(flex.body()).get("service_tier").asString()).isEqualTo("flex");
            assertThat(auto.statusCode()).as(auto.body()).isEqualTo(200);
            assertThat(json.readTree(auto.body()).get("service_tier").asString()).isEqualTo("default");
            UsageRows.await(jdbc, user, 3);
            assertThat(jdbc.sql("SELECT service_tier FROM token_usage WHERE user_id = ? ORDER BY created_at").param(user)
                    .query(String.class).list()).containsExactlyInAnyOrder("default", "flex", "default");
            for (String named : List.of("", "\"user\": \"+5\", ", "\"user\": \"ops-team\", ", "\"user\": 5, ", "\"user\": \"0\", ")) {
                var refused = send(trustingPort, "POST", "/v1/completions", null,
                        "{\"model\": \"simulated\", " + named + "\"prompt\": \"who am I\"}");
                assertThat(refused.statusCode()).as(named + ": " + refused.body()).isEqualTo(400);
                assertThat(json.readTree(refused.body()).at("/error/param").asString()).as(named).isEqualTo("user");
            }

            // And the admin API answers that it is disabled, whatever is sent
            for (String authorization : java.util.Arrays.asList(null, ADMIN)) {
                var disabled = send(trustingPort, "POST", "/admin/keys", authorization, "{\"user_id\": 1, \"name\": \"ci\"}");
                assertProblem(disabled, 403);
                assertThat(json.readTree(disabled.body()).get("detail").asString()).contains("disabled");
            }
        }
    }

    // --- helpers

    private static TestGateway anotherInstance() {
        return TestGateway.simulated().with("gateway.batch.max-wait", "1ms");
    }

    private HttpResponse<String> complete(int to, String authorization, String body) throws Exception {
        return send(to, "POST", "/complete", authorization, body);
    }

    private HttpResponse<String> send(int to, String method, String path, String authorization, String body) throws Exception {
        var request = HttpRequest.newBuilder(URI.create("http://localhost:" + to + path)).timeout(Duration.ofSeconds(30))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                // as curl sends a body over 1 MiB: a 413 comes before the body, which a closing server would cut with a reset
                .expectContinue(body != null && body.length() > 1024 * 1024);
        if (body != null) {
            request.header("Content-Type", "application/json");
        }
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private void assertUnauthenticated(HttpResponse<String> response) throws Exception {
        assertProblem(response, 401);
        assertThat(response.headers().firstValue("WWW-Authenticate")).hasValue("Bearer realm=\"batch-gateway\"");
        assertThat(json.readTree(response.body()).get("detail").asString()).isEqualTo(UNAUTHENTICATED);
    }

    private static void assertProblem(HttpResponse<String> response, int status) {
        assertThat(response.statusCode()).as(response.body()).isEqualTo(status);
        assertThat(response.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        assertThat(response.body()).doesNotContain("Exception").doesNotContain("\tat ");
    }
}
