package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.GatewayApplicationTest;
import dev.batchgateway.GatewayClient;
import dev.batchgateway.SimulatedGatewayTest;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** {@code GET /admin/usage} on the whole application: every user's usage in a window, per user, model or day, JSON or CSV. */
@SimulatedGatewayTest
class AdminUsageApiTest {

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();

    /** One stored row, as this test wrote it. */
    private record Row(long user, String model, int promptTokens, int completionTokens, Instant createdAt, String tier) {}

    // a day of its own in the 2030s, so that no other test's rows are in the window
    private final Instant day = Instant.parse("2031-01-01T00:00:00Z")
            .plus(ThreadLocalRandom.current().nextLong(0, 3000), ChronoUnit.DAYS);
    private final List<Row> rows = new ArrayList<>();

    @BeforeEach
    void rowsOfThreeUsersOverThreeDays() {
        var random = ThreadLocalRandom.current();
        long firstUser = random.nextLong(1_000_000, Long.MAX_VALUE - 10);
        for (int i = 0; i < 90; i++) {
            var row = new Row(firstUser + i % 3, i % 2 == 0 ? "big" : "small, \"quoted\"", random.nextInt(0, 500),
                    random.nextInt(0, 500), day.plus(Duration.ofSeconds(random.nextLong(0, 3 * 86_400))),
                    i % 5 == 0 ? "flex" : "default");
            jdbc.sql("""
                            INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at,
                                                     service_tier)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?)""")
                    .params(UUID.randomUUID(), row.user(), row.promptTokens(), row.completionTokens(),
                            row.promptTokens() + row.completionTokens(), row.model(), Timestamp.from(row.createdAt()), row.tier())
                    .update();
            rows.add(row);
        }
    }

    @Test
    void everyUsersModelsDaysOrTiersTotalsAreTheSumsOfTheirRowsInTheWindow() throws Exception {
        // When the window from 12:00 on the first day to 12:00 on the third is exported, per user, model, day and tier
        Instant from = day.plus(Duration.ofHours(12));
        Instant to = day.plus(Duration.ofHours(60));
        String window = "/admin/usage?from=" + from + "&to=" + to;
        var inWindow = rows.stream().filter(row -> !row.createdAt().isBefore(from) && row.createdAt().isBefore(to)).toList();

        // Then each group is the sums of its rows, in key order, and nothing else is in the window
        assertGroups(okJson(window), "user_id", row -> Long.toString(row.user()), inWindow);
        assertGroups(okJson(window + "&group_by=user"), "user_id", row -> Long.toString(row.user()), inWindow);
        assertGroups(okJson(window + "&group_by=model"), "model", Row::model, inWindow);
        assertGroups(okJson(window + "&group_by=day"), "day", row -> row.createdAt().toString().substring(0, 10), inWindow);
        JsonNode byTier = okJson(window + "&group_by=service_tier");
        assertGroups(byTier, "service_tier", Row::tier, inWindow);

        // And every group splits its sums by tier beside by outcome
        for (JsonNode group : okJson(window + "&group_by=model").get("groups")) {
            String model = group.get("model").asString();
            assertThat(group.at("/by_service_tier/flex/requests").asLong()).as(model)
                    .isEqualTo(inWindow.stream().filter(row -> row.model().equals(model) && row.tier().equals("flex")).count());
            assertThat(group.at("/by_service_tier/default/requests").asLong() + group.at("/by_service_tier/flex/requests").asLong())
                    .isEqualTo(group.at("/by_outcome/served/requests").asLong());
        }
    }

    @Test
    void withAcceptTextCsvTheExportIsCsv() {
        // When the whole three days are exported per model as CSV
        var response = gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/usage?group_by=model&from=" + day
                        + "&to=" + day.plus(3, ChronoUnit.DAYS)))
                .header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN)
                .header("Accept", "text/csv"));

        // Then it is CSV: a header, one line per model (a field with a comma or quote quoted), the rows' sums
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(type -> assertThat(type).startsWith("text/csv"));
        var expected = new StringBuilder("model,requests,prompt_tokens,completion_tokens,tokens\r\n");
        for (String model : List.of("big", "small, \"quoted\"")) {
            var of = rows.stream().filter(row -> row.model().equals(model)).toList();
            long prompt = of.stream().mapToLong(Row::promptTokens).sum();
            long completion = of.stream().mapToLong(Row::completionTokens).sum();
            expected.append(model.equals("big") ? model : "\"small, \"\"quoted\"\"\"").append(',').append(of.size()).append(',')
                    .append(prompt).append(',').append(completion).append(',').append(prompt + completion).append("\r\n");
        }
        assertThat(response.body()).isEqualTo(expected.toString());

        // And per tier, the first column is the tier's name
        var byTier = gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/usage?group_by=service_tier&from=" + day
                        + "&to=" + day.plus(3, ChronoUnit.DAYS)))
                .header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN)
                .header("Accept", "text/csv"));
        assertThat(byTier.statusCode()).as(byTier.body()).isEqualTo(200);
        assertThat(byTier.body().lines().map(line -> line.substring(0, line.indexOf(',') + 1) + line.split(",")[1]))
                .containsExactly("service_tier,requests",
                        "default," + rows.stream().filter(row -> row.tier().equals("default")).count(),
                        "flex," + rows.stream().filter(row -> row.tier().equals("flex")).count());

        // And Accept: */* (curl's) gets JSON
        var any = gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/usage?group_by=model"))
                .header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN)
                .header("Accept", "*/*"));
        assertThat(any.headers().firstValue("Content-Type")).hasValue("application/json");
    }

    @Test
    void onlyTheAdminTokenExportsAndABadGroupingIsNamed() {
        var asUser = gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/usage")).header("Authorization", gateway.bearer(5)));
        assertThat(asUser.statusCode()).isIn(401, 403);
        var anonymous = gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/usage")));
        assertThat(anonymous.statusCode()).isIn(401, 403);

        var bad = gateway.get("/admin/usage?group_by=week");
        assertThat(bad.statusCode()).isEqualTo(400);
        assertThat(bad.body()).contains("group_by must be user, model, day or service_tier, was 'week'");
    }

    private void assertGroups(JsonNode export, String keyField, Function<Row, String> key, List<Row> inWindow) {
        Map<String, List<Long>> expected = new TreeMap<>();
        for (Row row : inWindow) {
            expected.merge(key.apply(row), List.of(1L, (long) row.promptTokens(), (long) row.completionTokens()),
                    (a, b) -> List.of(a.get(0) + b.get(0), a.get(1) + b.get(1), a.get(2) + b.get(2)));
        }
        Map<String, List<Long>> actual = new TreeMap<>();
        var keys = new ArrayList<String>();
        for (JsonNode group : export.get("groups")) {
            String groupKey = group.get(keyField).asString();
            keys.add(groupKey);
            actual.put(groupKey, List.of(group.get("requests").asLong(), group.get("prompt_tokens").asLong(),
                    group.get("completion_tokens").asLong()));
            assertThat(group.get("tokens").asLong()).isEqualTo(group.get("prompt_tokens").asLong() + group.get("completion_tokens").asLong());
        }
        assertThat(actual).isEqualTo(expected);
        if (!keyField.equals("user_id")) {
            assertThat(keys).isSorted();
        } else {
            assertThat(keys.stream().map(Long::parseLong).toList()).isSorted();
        }
    }

    private JsonNode okJson(String path) throws Exception {
        HttpResponse<String> response = gateway.get(path);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValue("application/json");
        return json.readTree(response.body());
    }
}
