package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.batchgateway.GatewayClient;
import dev.batchgateway.SimulatedGatewayTest;
import dev.batchgateway.UsageRows;
import java.net.http.HttpResponse;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalManagementPort;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** {@code GET /usage/{user_id}} on the whole application: sums of real rows, and problem+json for bad input. */
@SimulatedGatewayTest
class UsageApiTest {

    @LocalServerPort
    int port;

    @LocalManagementPort
    int managementPort;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();
    private GatewayClient gateway;

    @BeforeEach
    void connect() {
        gateway = new GatewayClient(port, managementPort);
    }
    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);

    /** One stored row, as this test wrote it. */
    private record Row(int promptTokens, int completionTokens, Instant createdAt) {}

    @Test
    void totalsAreTheSumsOfTheUsersRows() throws Exception {
        // Given rows of this user spread over three days, and a row of another user
        Instant day = Instant.parse("2026-03-01T00:00:00Z");
        var rows = new ArrayList<Row>();
        var random = ThreadLocalRandom.current();
        for (int i = 0; i < 30; i++) {
            rows.add(insert(user, random.nextInt(0, 500), random.nextInt(0, 500),
                    day.plus(Duration.ofMinutes(random.nextLong(0, 3 * 24 * 60)))));
        }
        insert(user - 1, 1000, 1000, day);

        // When the totals are asked for without a window
        JsonNode totals = okJson("/usage/" + user);

        // Then they are the sums of exactly this user's rows
        assertThat(totals.get("user_id").asLong()).isEqualTo(user);
        assertTotals(totals, rows);
    }

    @Test
    void groupByDayOrModelSplitsTheWindowsTotalsIntoTheSumsOfEachDaysOrModelsRows() throws Exception {
        // Given rows of this user on three days (one at 23:59:59.999999) and of two models
        Instant day = Instant.parse("2026-05-01T00:00:00Z");
        var rows = new ArrayList<Row>();
        var models = new ArrayList<String>();
        var random = ThreadLocalRandom.current();
        for (int i = 0; i < 60; i++) {
            Instant at = i == 0 ? day.plus(1, ChronoUnit.DAYS).minus(1, ChronoUnit.MICROS)
                    : day.plus(Duration.ofSeconds(random.nextLong(0, 3 * 86_400)));
            String model = i % 3 == 0 ? "big" : "small";
            rows.add(insert(user, random.nextInt(0, 500), random.nextInt(0, 500), at, model));
            models.add(model);
        }

        // When the totals from 06:00 on the first day to 18:00 on the third are asked for by day and by model
        String window = "from=2026-05-01T06:00:00Z&to=2026-05-03T18:00:00Z";
        JsonNode byDay = okJson("/usage/" + user + "?" + window + "&group_by=day");
        JsonNode byModel = okJson("/usage/" + user + "?" + window + "&group_by=model");

        // Then each day's and each model's sums are those of its rows in the window, and the totals are all of them
        Instant from = Instant.parse("2026-05-01T06:00:00Z");
        Instant to = Instant.parse("2026-05-03T18:00:00Z");
        var inWindow = new ArrayList<Integer>();
        for (int i = 0; i < rows.size(); i++) {
            if (!rows.get(i).createdAt().isBefore(from) && rows.get(i).createdAt().isBefore(to)) {
                inWindow.add(i);
            }
        }
        assertTotals(byDay, inWindow.stream().map(rows::get).toList());
        assertTotals(byModel, inWindow.stream().map(rows::get).toList());
        assertThat(byDay.get("group_by").asString()).isEqualTo("day");
        assertThat(byDay.get("groups")).hasSize(3);
        for (JsonNode group : byDay.get("groups")) {
            String date = group.get("day").asString();
            assertTotals(group, inWindow.stream().map(rows::get)
                    .filter(row -> row.createdAt().toString().startsWith(date)).toList());
        }
        assertThat(byModel.get("groups")).hasSize(2);
        for (JsonNode group : byModel.get("groups")) {
            String model = group.get("model").asString();
            assertTotals(group, inWindow.stream().filter(i -> models.get(i).equals(model)).map(rows::get).toList());
        }

        // And without group_by there are no groups
        assertThat(okJson("/usage/" + user + "?" + window).has("groups")).isFalse();
    }

    @Test
    void groupByServiceTierSplitsTheTotalsByTheTierTheRowsRanInAndEveryAnswerCarriesByServiceTier() throws Exception {
        // Given rows of this user of both tiers over three days: whole days (read from the rollups) and part days
        Instant day = Instant.parse("2026-06-01T00:00:00Z");
        var rows = new ArrayList<Row>();
        var tiers = new ArrayList<String>();
        var random = ThreadLocalRandom.current();
        for (int i = 0; i < 60; i++) {
            String tier = i % 4 == 0 ? "flex" : "default";
            rows.add(insert(user, random.nextInt(0, 500), random.nextInt(0, 500),
                    day.plus(Duration.ofSeconds(random.nextLong(0, 3 * 86_400))), "m", tier));
            tiers.add(tier);
        }

        // When the totals from 06:00 on the first day to the third day's end are asked for by tier, and by day
        String window = "from=2026-06-01T06:00:00Z&to=2026-06-04T00:00:00Z";
        JsonNode byTier = okJson("/usage/" + user + "?" + window + "&group_by=service_tier");
        JsonNode byDay = okJson("/usage/" + user + "?" + window + "&group_by=day");

        // Then there is a group per tier, default first, each with the sums of its rows, and the totals are all of them
        Instant from = Instant.parse("2026-06-01T06:00:00Z");
        var inWindow = java.util.stream.IntStream.range(0, rows.size())
                .filter(i -> !rows.get(i).createdAt().isBefore(from)).boxed().toList();
        assertTotals(byTier, inWindow.stream().map(rows::get).toList());
        assertThat(byTier.get("group_by").asString()).isEqualTo("service_tier");
        assertThat(byTier.get("groups").valueStream().map(group -> group.get("service_tier").asString()))
                .containsExactly("default", "flex");
        for (JsonNode group : byTier.get("groups")) {
            String tier = group.get("service_tier").asString();
            assertTotals(group, inWindow.stream().filter(i -> tiers.get(i).equals(tier)).map(rows::get).toList());
            assertTotals(group.at("/by_service_tier/" + tier), inWindow.stream().filter(i -> tiers.get(i).equals(tier)).map(rows::get).toList());
        }

        // And by_service_tier beside by_outcome splits the totals, in every answer and in every group
        for (JsonNode answer : List.of(byTier, byDay, okJson("/usage/" + user + "?" + window))) {
            for (String tier : List.of("default", "flex")) {
                assertTotals(answer.at("/by_service_tier/" + tier),
                        inWindow.stream().filter(i -> tiers.get(i).equals(tier)).map(rows::get).toList());
            }
            assertThat(answer.get("by_outcome").has("served")).isTrue();
        }
        for (JsonNode group : byDay.get("groups")) {
            String date = group.get("day").asString();
            assertTotals(group.at("/by_service_tier/flex"), inWindow.stream()
                    .filter(i -> tiers.get(i).equals("flex") && rows.get(i).createdAt().toString().startsWith(date))
                    .map(rows::get).toList());
        }
    }

    @Test
    void aWindowCountsFromInclusiveToExclusive() throws Exception {
        // Given rows just before, at, inside, at the end of and after a window
        Instant from = Instant.parse("2026-04-01T00:00:00Z");
        Instant to = Instant.parse("2026-04-02T00:00:00Z");
        var before = insert(user, 1, 1, from.minus(1, ChronoUnit.MICROS));
        var atFrom = insert(user, 2, 3, from);
        var inside = insert(user, 5, 8, from.plus(Duration.ofHours(12)));
        var lastInside = insert(user, 13, 21, to.minus(1, ChronoUnit.MICROS));
        var atTo = insert(user, 34, 55, to);

        // When the totals are asked for the window, and for open-ended windows
        JsonNode window = okJson("/usage/" + user + "?from=" + from + "&to=" + to);
        JsonNode sinceFrom = okJson("/usage/" + user + "?from=" + from);
        JsonNode untilTo = okJson("/usage/" + user + "?to=" + to);
        JsonNode empty = okJson("/usage/" + user + "?from=" + from + "&to=" + from);

        // Then each counts exactly the rows inside it
        assertTotals(window, List.of(atFrom, inside, lastInside));
        assertTotals(sinceFrom, List.of(atFrom, inside, lastInside, atTo));
        assertTotals(untilTo, List.of(before, atFrom, inside, lastInside));
        assertTotals(empty, List.of());
    }

    @Test
    void windowBoundsMayCarryAnOffsetAndFractions() throws Exception {
        // Given a row at 10:00:00.000001Z
        var row = insert(user, 4, 6, Instant.parse("2026-05-01T10:00:00.000001Z"));

        // When the window starts at 12:00:00.0000005+02:00 (10:00:00.0000005Z, before the row) or a nanosecond after it
        JsonNode includes = okJson("/usage/" + user + "?from=2026-05-01T12:00:00.0000005%2B02:00");
        JsonNode excludes = okJson("/usage/" + user + "?from=2026-05-01T10:00:00.000001001Z");

        // Then the bound is exact to the nanosecond although PostgreSQL keeps microseconds
        assertTotals(includes, List.of(row));
        assertTotals(excludes, List.of());
    }

    @Test
    void anUnknownUserHasZeros() throws Exception {
        JsonNode totals = okJson("/usage/" + user);

        assertThat(totals.get("user_id").asLong()).isEqualTo(user);
        assertTotals(totals, List.of());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            /usage/abc                                        | user_id must be an integer from 1 to 9223372036854775807, was 'abc'
            /usage/0                                          | user_id must be an integer from 1 to
            /usage/-5                                         | user_id must be an integer from 1 to
            /usage/1.5                                        | user_id must be an integer from 1 to
            /usage/9223372036854775808                        | user_id must be an integer from 1 to
            /usage/99999999999999999999999999                 | user_id must be an integer from 1 to
            /usage/%D9%A1%D9%A2                               | user_id must be an integer from 1 to
            /usage/42?from=yesterday                          | from must be an ISO-8601 instant
            /usage/42?to=2026-01-01                           | to must be an ISO-8601 instant
            /usage/42?from=2026-01-01T00:00:00%2B02:00:00:00  | from must be an ISO-8601 instant
            /usage/42?from=2026-01-01T00:00:00+02:00          | from must be an ISO-8601 instant
            /usage/42?from=%2B100000-01-01T00:00:00Z          | from must lie between
            /usage/42?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z | from (2026-02-01T00:00:00Z) must not be after to (2026-01-01T00:00:00Z)
            /usage/42?group_by=week                           | group_by must be day, model or service_tier, was 'week'
            """)
    void badInputIsAProblemNamingWhatToFix(String path, String detail) throws Exception {
        var response = get(path);

        assertThat(response.statusCode()).as(response.body()).isEqualTo(400);
        assertThat(response.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        JsonNode problem = json.readTree(response.body());
        assertThat(problem.get("status").asInt()).isEqualTo(400);
        assertThat(problem.get("detail").asString()).contains(detail);
        assertThat(response.body()).doesNotContain("Exception").doesNotContain("at dev.");
    }

    @Test
    void readinessIncludesTheUsageLedger() throws Exception {
        var response = get("/actuator/health/readiness");

        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        JsonNode readiness = json.readTree(response.body());
        assertThat(readiness.get("status").asString()).isEqualTo("UP");
        assertThat(readiness.at("/components/usageLedger/status").asString()).isEqualTo("UP");
        assertThat(readiness.at("/components/usageLedger/details/capacity").asInt()).isEqualTo(100_000);
        assertThat(readiness.at("/components/db").isMissingNode()).as("the database is not a readiness check").isTrue();
    }

    @Test
    void usageMetricsAreExposedForPrometheus() throws Exception {
        // Given one served completion, so that one write has happened
        var completion = gateway.complete(Map.of("prompt", "count me", "user_id", user));
        assertThat(completion.statusCode()).isEqualTo(200);
        UsageRows.await(jdbc, user, 1);

        // When Prometheus scrapes, once the ledger has counted that write (it counts after the row is visible, so a
        // scrape in between would see none when this is the context's first write)
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(rowsWritten(get("/actuator/prometheus").body()))
                .as("gateway_usage_rows_written_total after one served completion").isGreaterThanOrEqualTo(1));
        String scrape = get("/actuator/prometheus").body();

        // Then the usage meters are there
        assertThat(scrape)
                .contains("gateway_usage_rows_pending")
                .contains("gateway_usage_rows_capacity 100000.0")
                .contains("gateway_usage_write_failures_total{kind=\"recoverable\"}")
                .contains("gateway_usage_write_failures_total{kind=\"permanent\"}")
                .contains("gateway_usage_rows_rejected_total")
                .contains("gateway_usage_write_latency_seconds_count");
    }

    private static double rowsWritten(String scrape) {
        return scrape.lines()
                .filter(line -> line.startsWith("gateway_usage_rows_written_total"))
                .mapToDouble(line -> Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1)))
                .sum();
    }

    // --- helpers

    private Row insert(long owner, int promptTokens, int completionTokens, Instant createdAt) {
        return insert(owner, promptTokens, completionTokens, createdAt, "m");
    }

    private Row insert(long owner, int promptTokens, int completionTokens, Instant createdAt, String model) {
        return insert(owner, promptTokens, completionTokens, createdAt, model, "default");
    }

    private Row insert(long owner, int promptTokens, int completionTokens, Instant createdAt, String model, String tier) {
        jdbc.sql("""
                        INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at,
                                                 service_tier)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)""")
                .params(UUID.randomUUID(), owner, promptTokens, completionTokens, promptTokens + completionTokens, model,
                        Timestamp.from(createdAt), tier)
                .update();
        return new Row(promptTokens, completionTokens, createdAt);
    }

    private void assertTotals(JsonNode totals, List<Row> rows) {
        long prompt = rows.stream().mapToLong(Row::promptTokens).sum();
        long completion = rows.stream().mapToLong(Row::completionTokens).sum();
        assertThat(Map.of(
                "requests", totals.get("requests").asLong(),
                "prompt_tokens", totals.get("prompt_tokens").asLong(),
                "completion_tokens", totals.get("completion_tokens").asLong(),
                "tokens", totals.get("tokens").asLong()))
                .isEqualTo(Map.of(
                        "requests", (long) rows.size(),
                        "prompt_tokens", prompt,
                        "completion_tokens", completion,
                        "tokens", prompt + completion));
    }

    private JsonNode okJson(String path) throws Exception {
        var response = get(path);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValue("application/json");
        return json.readTree(response.body());
    }

    private HttpResponse<String> get(String path) {
        return gateway.get(path);
    }
}
