package dev.batchgateway.audit;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.GatewayApplicationTest;
import dev.batchgateway.GatewayClient;
import dev.batchgateway.SimulatedGatewayTest;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The audit log on the whole application: each admin action leaves one {@code admin_audit} row and one log line naming
 * the admin token by its id, never a secret; {@code GET /admin/audit} reads them newest first, a page at a time.
 */
@ExtendWith(OutputCaptureExtension.class)
// the settings of UsageApiTest and AdminUsageApiTest: one context for the three
@SimulatedGatewayTest
class AdminAuditApiTest {

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);

    @Test
    void everyAdminActionLeavesOneRowAndOneLogLineNamingTheTokenByItsIdAndNoSecret(CapturedOutput output) throws Exception {
        Instant since = databaseNow();
        String tokenId = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                .digest(GatewayApplicationTest.ADMIN_TOKEN.getBytes(StandardCharsets.UTF_8))).substring(0, 8);

        // When the operator creates a key, revokes it, sets the user's limits, clears them, and exports usage
        var created = gateway.admin("POST", "/admin/keys", """
                {"user_id": %d, "name": "audited", "expires_at": "2099-01-01T00:00:00Z", "models": ["simulated"]}""".formatted(user));
        assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
        String keyId = json.readTree(created.body()).get("id").asString();
        String secret = json.readTree(created.body()).get("key").asString();
        assertThat(gateway.admin("DELETE", "/admin/keys/" + keyId, null).statusCode()).isEqualTo(204);
        assertThat(gateway.admin("PUT", "/admin/users/" + user + "/limits", """
                {"tokens_per_day": 1000, "tokens_per_month": null, "requests_per_minute": 60}""").statusCode()).isEqualTo(200);
        assertThat(gateway.admin("DELETE", "/admin/users/" + user + "/limits", null).statusCode()).isEqualTo(204);
        var exported = gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/usage?from=2031-01-01T00:00:00Z&to=2031-01-02T00:00:00Z"))
                .header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN).header("Accept", "text/csv"));
        assertThat(exported.statusCode()).isEqualTo(200);

        // Then GET /admin/audit has one entry per action, newest first, each naming the admin token by its id
        List<JsonNode> entries = new ArrayList<>();
        page("since=" + encoded(since)).get("entries").forEach(entries::add);
        List<JsonNode> ours = entries.stream()
                .filter(entry -> entry.get("target").asString().equals("keys/" + keyId)
                        || entry.get("target").asString().equals("users/" + user + "/limits")
                        || entry.get("target").asString().equals("usage") && entry.at("/change/from").asString().startsWith("2031-01-01"))
                .toList();
        assertThat(ours).extracting(entry -> entry.get("action").asString())
                .containsExactly("usage.exported", "limits.cleared", "limits.set", "key.revoked", "key.created");
        assertThat(ours).extracting(entry -> entry.get("admin_token_id").asString()).containsOnly(tokenId);
        assertThat(ours).extracting(entry -> entry.get("id").asLong()).isSortedAccordingTo((a, b) -> Long.compare(b, a));

        // And each says what changed
        JsonNode keyCreated = ours.get(4).get("change");
        assertThat(keyCreated.get("user_id").asLong()).isEqualTo(user);
        assertThat(keyCreated.get("name").asString()).isEqualTo("audited");
        assertThat(keyCreated.get("expires_at").asString()).isEqualTo("2099-01-01T00:00:00Z");
        assertThat(keyCreated.get("models").valueStream().map(JsonNode::asString)).containsExactly("simulated");
        assertThat(ours.get(3).at("/change/user_id").asLong()).isEqualTo(user);
        assertThat(ours.get(3).at("/change/revoked_at").isString()).isTrue();
        assertThat(ours.get(2).at("/change/before/source").asString()).isEqualTo("defaults");
        assertThat(ours.get(2).at("/change/after/tokens_per_day").asLong()).isEqualTo(1000);
        assertThat(ours.get(2).at("/change/after/tokens_per_month").isNull()).isTrue();
        assertThat(ours.get(1).at("/change/before/requests_per_minute").asLong()).isEqualTo(60);
        assertThat(ours.get(1).at("/change/after/source").asString()).isEqualTo("defaults");
        assertThat(ours.get(0).at("/change/group_by").asString()).isEqualTo("user");
        assertThat(ours.get(0).at("/change/format").asString()).isEqualTo("csv");

        // And one row each in admin_audit, and one log line each, none holding the key, its prefix or the admin token
        String rows = String.join("\n", jdbc.sql("SELECT a::text FROM admin_audit a WHERE id >= ?")
                .param(ours.get(4).get("id").asLong()).query(String.class).list());
        String prefix = secret.substring(0, 11);
        for (String text : List.of(rows, output.getAll())) {
            assertThat(text).doesNotContain(secret).doesNotContain(secret.substring(3)).doesNotContain(prefix)
                    .doesNotContain(GatewayApplicationTest.ADMIN_TOKEN);
        }
        for (String action : List.of("key.created on keys/" + keyId, "key.revoked on keys/" + keyId,
                "limits.set on users/" + user + "/limits", "limits.cleared on users/" + user + "/limits")) {
            assertThat(output.getAll().lines().filter(line -> line.contains("admin action " + action + " by admin token " + tokenId)))
                    .as("log lines of " + action).hasSize(1);
        }
    }

    @Test
    void theAuditLogIsReadAPageAtATimeNewestFirst() {
        // Given three actions
        Instant since = databaseNow();
        for (int i = 0; i < 3; i++) {
            assertThat(gateway.admin("DELETE", "/admin/users/" + (user - i) + "/limits", null).statusCode()).isEqualTo(204);
        }

        // When they are read two at a time
        JsonNode first = page("limit=2&since=" + encoded(since));
        String cursor = first.get("next_cursor").asString();
        JsonNode second = page("limit=2&since=" + encoded(since) + "&cursor=" + cursor);

        // Then the first page holds the newest two, the second the rest, and says it is the last
        List<String> targets = new ArrayList<>();
        first.get("entries").forEach(entry -> targets.add(entry.get("target").asString()));
        second.get("entries").forEach(entry -> targets.add(entry.get("target").asString()));
        assertThat(targets).containsSubsequence("users/" + (user - 2) + "/limits", "users/" + (user - 1) + "/limits",
                "users/" + user + "/limits");
        assertThat(targets).doesNotHaveDuplicates();
        assertThat(first.get("entries")).hasSize(2);
        assertThat(second.get("next_cursor").isNull()).as(second.toString()).isTrue();
        assertThat(first.get("entries").get(1).get("id").asLong()).isEqualTo(Long.parseLong(cursor));
    }

    @Test
    void badPagingIs400AndTheAuditLogIsTheOperatorsOnly() {
        for (String query : List.of("limit=0", "limit=1001", "limit=x", "cursor=-1", "cursor=abc", "since=yesterday",
                "since=2026-12-01T00:00:00")) {
            assertThat(gateway.get("/admin/audit?" + query).statusCode()).as(query).isEqualTo(400);
        }
        var asUser = gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/audit")).header("Authorization", gateway.bearer(user)));
        assertThat(asUser.statusCode()).isEqualTo(401);
        assertThat(gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/audit"))).statusCode()).isEqualTo(401);
    }

    @Test
    void clearingAUsersLimitsPutsItBackOnTheDefaultsAnd204EvenWithoutLimits() {
        assertThat(gateway.admin("PUT", "/admin/users/" + user + "/limits", """
                {"tokens_per_day": 5, "tokens_per_month": null, "requests_per_minute": null}""").statusCode()).isEqualTo(200);
        assertThat(json.readTree(gateway.get("/admin/users/" + user + "/limits").body()).get("source").asString()).isEqualTo("user");

        assertThat(gateway.admin("DELETE", "/admin/users/" + user + "/limits", null).statusCode()).isEqualTo(204);
        assertThat(json.readTree(gateway.get("/admin/users/" + user + "/limits").body()).get("source").asString()).isEqualTo("defaults");
        assertThat(gateway.admin("DELETE", "/admin/users/" + user + "/limits", null).statusCode()).isEqualTo(204);
        assertThat(gateway.admin("DELETE", "/admin/users/0/limits", null).statusCode()).isEqualTo(400);
    }

    private JsonNode page(String query) {
        HttpResponse<String> answer = gateway.get("/admin/audit?" + query);
        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
        return json.readTree(answer.body());
    }

    private Instant databaseNow() {
        return jdbc.sql("SELECT clock_timestamp()").query(java.time.OffsetDateTime.class).single().toInstant()
                .truncatedTo(ChronoUnit.MICROS);
    }

    private static String encoded(Instant instant) {
        return URLEncoder.encode(instant.toString(), StandardCharsets.UTF_8);
    }
}
