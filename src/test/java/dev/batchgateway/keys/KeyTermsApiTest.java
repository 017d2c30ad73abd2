package dev.batchgateway.keys;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.GatewayClient;
import dev.batchgateway.SimulatedGatewayTest;
import java.net.http.HttpRequest;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * What a key is issued for, on the whole application: an expiry (then 401 like any invalid key), the models it may use,
 * its own limits (enforced beside its user's), and how the admin API shows them.
 */
// the settings of UsageApiTest and AdminUsageApiTest: one context for them all
@SimulatedGatewayTest
class KeyTermsApiTest {

    private static final String INVALID_KEY = "a valid API key is required: send Authorization: Bearer <key>";

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);

    @Test
    void aKeyIsIssuedWithItsTermsAndListedWithThem() {
        Instant expiry = Instant.now().plus(30, ChronoUnit.DAYS).truncatedTo(ChronoUnit.SECONDS);

        // When a key is created with an expiry in another offset, for one model, with limits given as none
        var created = create("""
                {"user_id": %d, "name": "terms", "expires_at": "%s", "models": ["simulated", "simulated"],
                 "limits": {"tokens_per_day": null, "tokens_per_month": null, "requests_per_minute": null}}"""
                .formatted(user, expiry.atOffset(java.time.ZoneOffset.ofHours(2))));

        // Then the answer and the listing show the expiry in UTC, the model once, and the limits as none
        assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
        JsonNode listed = json.readTree(gateway.get("/admin/keys?user_id=" + user).body()).get("keys").get(0);
        for (JsonNode key : List.of(json.readTree(created.body()), listed)) {
            assertThat(key.get("expires_at").asString()).isEqualTo(expiry.toString());
            assertThat(key.get("models").valueStream().map(JsonNode::asString)).containsExactly("simulated");
            assertThat(key.at("/limits/tokens_per_day").isNull()).isTrue();
            assertThat(key.at("/limits/tokens_per_month").isNull()).isTrue();
            assertThat(key.at("/limits/requests_per_minute").isNull()).isTrue();
        }

        // And a key without terms shows none: no expiry, every model (null)
        var plain = json.readTree(create("""
                {"user_id": %d, "name": "plain"}""".formatted(user)).body());
        assertThat(plain.get("expires_at").isNull()).isTrue();
        assertThat(plain.get("models").isNull()).isTrue();
        assertThat(plain.at("/limits/tokens_per_day").isNull()).isTrue();
    }

    @Test
    void aKeyIsIssuedWithADefaultServiceTierShownInItsViewsAndAudited() {
        // When a key is created for the flex tier, and one without a tier
        var flex = create("""
                {"user_id": %d, "name": "pipeline", "service_tier": "flex"}""".formatted(user));
        var plain = create("""
                {"user_id": %d, "name": "plain", "service_tier": null}""".formatted(user));

        // Then the answers, the listing and the audit rows show flex for the first and default for the other
        assertThat(flex.statusCode()).as(flex.body()).isEqualTo(201);
        assertThat(plain.statusCode()).as(plain.body()).isEqualTo(201);
        assertThat(json.readTree(flex.body()).get("service_tier").asString()).isEqualTo("flex");
        assertThat(json.readTree(plain.body()).get("service_tier").asString()).isEqualTo("default");
        JsonNode listed = json.readTree(gateway.get("/admin/keys?user_id=" + user).body()).get("keys");
        assertThat(listed.valueStream().map(key -> key.get("name").asString() + "=" + key.get("service_tier").asString()))
                .containsExactlyInAnyOrder("pipeline=flex", "plain=default");
        for (var created : List.of(flex, plain)) {
            String id = json.readTree(created.body()).get("id").asString();
            assertThat(jdbc.sql("SELECT change ->> 'service_tier' FROM admin_audit WHERE target = ?").param("keys/" + id)
                    .query(String.class).single()).isEqualTo(json.readTree(created.body()).get("service_tier").asString());
        }
    }

    @Test
    void aKeysRequestsAskingForAutoOrNoTierRunInTheKeysTierAndANamedTierWinsOnEveryEndpoint() {
        // Given a key issued for the flex tier
        String key = "Bearer " + json.readTree(create("""
                {"user_id": %d, "name": "pipeline", "service_tier": "flex"}""".formatted(user)).body()).get("key").asString();

        // When it calls /complete without a tier, streamed with auto, and naming default; and /v1 without a tier and with auto
        var plain = gateway.post("/complete", key, "{\"prompt\": \"a b\"}");
        var streamed = gateway.post("/complete", key, "{\"prompt\": \"a b\", \"stream\": true, \"service_tier\": \"auto\"}");
        var named = gateway.post("/complete", key, "{\"prompt\": \"a b\", \"service_tier\": \"default\"}");
        var text = gateway.post("/v1/completions", key, "{\"model\": \"simulated\", \"prompt\": \"a b\"}");
        var chat = gateway.post("/v1/chat/completions", key, """
                {"model": "simulated", "messages": [{"role": "user", "content": "a b"}], "service_tier": "auto"}""");

        // Then each answer says the tier it ran in: the key's, but where the request named default
        for (var answer : List.of(plain, streamed, named, text, chat)) {
            assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
        }
        assertThat(json.readTree(plain.body()).get("service_tier").asString()).isEqualTo("flex");
        String done = streamed.body().lines().filter(line -> line.contains("\"done\"")).findFirst().orElseThrow();
        assertThat(json.readTree(done.substring("data: ".length())).get("service_tier").asString()).isEqualTo("flex");
        assertThat(json.readTree(named.body()).get("service_tier").asString()).isEqualTo("default");
        assertThat(json.readTree(text.body()).get("service_tier").asString()).isEqualTo("flex");
        assertThat(json.readTree(chat.body()).get("service_tier").asString()).isEqualTo("flex");

        // And the usage rows record the same tiers, which /usage splits by
        dev.batchgateway.UsageRows.await(jdbc, user, 5);
        JsonNode byTier = json.readTree(gateway.get("/usage/" + user + "?group_by=service_tier").body());
        assertThat(byTier.get("groups").valueStream()
                .map(group -> group.get("service_tier").asString() + "=" + group.get("requests").asLong()))
                .containsExactly("default=1", "flex=4");
        assertThat(byTier.at("/by_service_tier/flex/requests").asLong()).isEqualTo(4);
        assertThat(jdbc.sql("SELECT service_tier FROM token_usage WHERE request_id = ?")
                .param(UUID.fromString(json.readTree(named.body()).get("request_id").asString())).query(String.class).single())
                .isEqualTo("default");
    }

    @Test
    void badTermsAre400NamingWhatToFix() {
        String base = "{\"user_id\": " + user + ", \"name\": \"bad\", ";
        record Refusal(String fields, String detail) {}
        for (var refusal : List.of(
                new Refusal("\"expires_at\": \"2020-01-01T00:00:00Z\"}", "expires_at must be in the future, was 2020-01-01T00:00:00Z"),
                new Refusal("\"expires_at\": \"2099-01-01T00:00:00\"}", "expires_at must be an RFC 3339 time with an offset"),
                new Refusal("\"expires_at\": \"2099-01-01\"}", "expires_at must be an RFC 3339 time with an offset"),
                new Refusal("\"expires_at\": \"+12099-01-01T00:00:00Z\"}", "expires_at must be an RFC 3339 time with an offset"),
                new Refusal("\"expires_at\": 4102444800}", "expires_at must be an RFC 3339 time with an offset"),
                new Refusal("\"models\": []}", "models must be a non-empty JSON array"),
                new Refusal("\"models\": \"simulated\"}", "models must be a non-empty JSON array"),
                new Refusal("\"models\": [7]}", "models must be a JSON array of model names"),
                new Refusal("\"models\": [\"gpt-4o\"]}", "models not served by this gateway: gpt-4o; it serves simulated"),
                new Refusal("\"limits\": {\"tokens_per_day\": null}}", "limits.tokens_per_month is required"),
                new Refusal("\"limits\": {\"tokens_per_day\": -1, \"tokens_per_month\": null, \"requests_per_minute\": null}}",
                        "limits.tokens_per_day must be a JSON integer from 0"),
                new Refusal("\"limits\": {\"per_hour\": 1}}", "unknown field limits.per_hour"),
                new Refusal("\"limits\": 5}", "limits must be a JSON object"),
                new Refusal("\"service_tier\": \"auto\"}", "service_tier must be \"default\" or \"flex\""),
                new Refusal("\"service_tier\": \"priority\"}", "service_tier must be \"default\" or \"flex\""),
                new Refusal("\"service_tier\": \"Flex\"}", "service_tier must be \"default\" or \"flex\""),
                new Refusal("\"service_tier\": 1}", "service_tier must be \"default\" or \"flex\""),
                new Refusal("\"scopes\": []}", "unknown field scopes"))) {
            var answer = create(base + refusal.fields());
            assertThat(answer.statusCode()).as(refusal.fields() + ": " + answer.body()).isEqualTo(400);
            assertThat(json.readTree(answer.body()).get("detail").asString()).as(refusal.fields()).startsWith(refusal.detail());
        }
        assertThat(jdbc.sql("SELECT count(*) FROM api_key WHERE user_id = ?").param(user).query(Long.class).single())
                .as("keys created by refused requests").isZero();
    }

    @Test
    void anExpiredKeyIs401WithTheSameAnswerAsAnUnknownKeyOnBothApis() {
        // Given a key whose expiry has passed (set in the database: the gateway refuses to issue one)
        var created = json.readTree(create("""
                {"user_id": %d, "name": "expiring", "expires_at": "2099-01-01T00:00:00Z"}""".formatted(user)).body());
        jdbc.sql("UPDATE api_key SET expires_at = now() - interval '1 second' WHERE id = ?")
                .param(UUID.fromString(created.get("id").asString())).update();
        String expired = "Bearer " + created.get("key").asString();
        String unknown = "Bearer bg_" + "A".repeat(43);

        // When it is used on /complete and on /v1, as is a key that never existed
        String prompt = "{\"prompt\": \"hi\"}";
        String chat = "{\"model\": \"simulated\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";
        var expiredComplete = gateway.post("/complete", expired, prompt);
        var unknownComplete = gateway.post("/complete", unknown, prompt);
        var expiredChat = gateway.post("/v1/chat/completions", expired, chat);
        var unknownChat = gateway.post("/v1/chat/completions", unknown, chat);

        // Then both are 401 with the same body: nothing tells an expired key from one that never was
        assertThat(List.of(expiredComplete.statusCode(), expiredChat.statusCode(), unknownComplete.statusCode(),
                unknownChat.statusCode())).containsOnly(401);
        assertThat(json.readTree(expiredComplete.body()).get("detail").asString()).isEqualTo(INVALID_KEY);
        assertThat(withoutInstance(expiredComplete.body())).isEqualTo(withoutInstance(unknownComplete.body()));
        assertThat(expiredChat.body()).isEqualTo(unknownChat.body());
        assertThat(json.readTree(expiredChat.body()).at("/error/code").asString()).isEqualTo("invalid_api_key");
        var models = gateway.send(HttpRequest.newBuilder(gateway.uri("/v1/models")).header("Authorization", expired));
        assertThat(models.statusCode()).isEqualTo(401);
    }

    @Test
    void aKeysOwnLimitsRefuseItsRequestsWhileTheUsersOtherKeysGoOn() {
        // Given a user without limits, one key with a daily limit of 100 tokens of its own, and one without
        var limited = json.readTree(create("""
                {"user_id": %d, "name": "limited", "limits": {"tokens_per_day": 100, "tokens_per_month": null,
                 "requests_per_minute": null}}""".formatted(user)).body());
        String limitedKey = "Bearer " + limited.get("key").asString();
        String otherKey = "Bearer " + json.readTree(create("""
                {"user_id": %d, "name": "other"}""".formatted(user)).body()).get("key").asString();

        // When the limited key asks for a completion that fits its limit, then one that cannot (2 + 16 + 200 tokens)
        var fits = gateway.post("/complete", limitedKey, "{\"prompt\": \"hi\", \"max_tokens\": 20}");
        var beyond = gateway.post("/complete", limitedKey, "{\"prompt\": \"hi\", \"max_tokens\": 200}");
        var beyondOnV1 = gateway.post("/v1/completions", limitedKey,
                "{\"model\": \"simulated\", \"prompt\": \"hi\", \"max_tokens\": 200}");
        var otherKeysCall = gateway.post("/complete", otherKey, "{\"prompt\": \"hi\", \"max_tokens\": 200}");

        // Then the first is served and billed to the key's own budget, the second is 429 naming the key's limit on both
        // APIs, and the user's other key is not held back by it
        assertThat(fits.statusCode()).as(fits.body()).isEqualTo(200);
        long keyAccount = dev.batchgateway.budget.Budgets.keyAccount(UUID.fromString(limited.get("id").asString()));
        assertThat(jdbc.sql("SELECT consumed FROM budget_window WHERE user_id = ? AND kind = 'day'").param(keyAccount)
                .query(Long.class).single()).as("tokens billed to the key's own daily budget")
                .isEqualTo(json.readTree(fits.body()).get("tokens").asLong());
        assertThat(beyond.statusCode()).as(beyond.body()).isEqualTo(429);
        JsonNode refusal = json.readTree(beyond.body());
        assertThat(refusal.get("limit").asString()).isEqualTo("tokens_per_day");
        assertThat(refusal.get("limit_scope").asString()).isEqualTo("key");
        assertThat(refusal.get("detail").asString()).startsWith("this key's tokens_per_day is 100");
        assertThat(beyondOnV1.statusCode()).as(beyondOnV1.body()).isEqualTo(429);
        assertThat(json.readTree(beyondOnV1.body()).at("/error/limit_scope").asString()).isEqualTo("key");
        assertThat(otherKeysCall.statusCode()).as(otherKeysCall.body()).isEqualTo(200);
    }

    private java.net.http.HttpResponse<String> create(String body) {
        return gateway.admin("POST", "/admin/keys", body);
    }

    /** A problem's {@code instance} is the request's own path; nothing else may differ. */
    private String withoutInstance(String body) {
        var problem = (tools.jackson.databind.node.ObjectNode) json.readTree(body);
        problem.remove("instance");
        return problem.toString();
    }
}
