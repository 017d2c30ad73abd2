package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.Scheduler;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Budgets and rate limits on two whole gateways sharing one real PostgreSQL and nothing else: 200 requests of one user,
 * alternating between the instances, many in flight at once (the simulated worker takes 200 ms a batch). What the user
 * is billed never passes the limit, most of the limit is served, and every other request gets 429.
 */
// settings of its own, so that no other test class shares (and Spring's test context cache pauses) this context
@GatewayApplicationTest(properties = {"gateway.worker.type=simulated", "gateway.simulated.latency=200ms",
        "gateway.batch.max-wait=5ms"})
class BudgetsGatewayTest {

    private static final String ADMIN = "Bearer " + GatewayApplicationTest.ADMIN_TOKEN;
    private static final int REQUESTS = 200;
    /** Ten words: the simulated worker counts 10 prompt tokens and answers 10 (max_tokens), so each request costs 20. */
    private static final String PROMPT = "a b c d e f g h i j";
    private static final int COST = 20;
    /** What each request reserves: the prompt's 19 bytes, 16 for special tokens, and max_tokens. */
    private static final int BOUND = 19 + 16 + 10;
    private static final long TOKENS_PER_DAY = REQUESTS * COST * 40 / 100;
    private static final long REQUESTS_PER_MINUTE = REQUESTS * 40 / 100;
    /** About 40 a second. */
    private static final Duration EVERY = Duration.ofMillis(25);

    private static ConfigurableApplicationContext second;
    private static int secondPort;

    @LocalServerPort
    int port;

    @Autowired
    JdbcClient jdbc;

    @Autowired
    Scheduler scheduler;

    private final HttpClient http = HttpClient.newHttpClient();
    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
    private GatewayClient gateway;

    @BeforeAll
    static void startTheSecondInstance() {
        second = TestGateway.simulated()
                .with("gateway.simulated.latency", "200ms")
                .with("gateway.batch.max-wait", "5ms")
                // a default no test reaches, to see GATEWAY_DEFAULT_* applied (every instance should have the same ones)
                .with("gateway.default.requests-per-minute", 100000)
                .start();
        secondPort = TestGateway.port(second);
    }

    @AfterAll
    static void stopTheSecondInstance() {
        if (second != null) {
            second.close();
        }
    }

    @BeforeEach
    void connect() {
        gateway = new GatewayClient(port);
    }

    /** A settlement that threw may have left a reservation held: on either instance, that fails the test. */
    @AfterEach
    void noSettlementFailed() {
        assertThat(scheduler.settlementFailures()).as("settlements that threw on the first instance").isZero();
        assertThat(second.getBean(Scheduler.class).settlementFailures()).as("on the second instance").isZero();
    }

    @Test
    void tokensPerDayHoldAcrossTwoInstancesAtFortyRequestsASecond() throws Exception {
        // Given a user whose day's budget is 40 % of what 200 requests cost, known to both instances
        limit("{\"tokens_per_day\": " + TOKENS_PER_DAY + ", \"tokens_per_month\": null, \"requests_per_minute\": null}");
        awaitWindowsWithSecondsLeft(10);

        // When 200 requests arrive at 40 a second, alternating between the instances
        var answers = fire(EVERY);

        // Then every request was served or refused with 429 naming the day's limit
        long served = assertServedOrRefused(answers, "tokens_per_day");
        awaitNothingReserved("tokens_today");
        long billed = billedOnceWritten(served);
        System.out.printf("[measured] tokens_per_day %d, 40/s alternating: %d of %d requests served, billed %d tokens = %.1f %% of the limit%n",
                TOKENS_PER_DAY, served, REQUESTS, billed, 100.0 * billed / TOKENS_PER_DAY);

        // And the user was billed no more than the limit, yet at least 80 % of it: reservations settle, slices go back
        assertThat(billed).isEqualTo(served * COST).isLessThanOrEqualTo(TOKENS_PER_DAY);
        assertThat(billed).isGreaterThanOrEqualTo(TOKENS_PER_DAY * 80 / 100);
        assertThat(servedOn(answers, secondPort)).as("both instances served").isPositive();
        assertThat(servedOn(answers, port)).isPositive();
    }

    @Test
    void tokensPerDayHoldWhenAllRequestsArriveAtOnce() throws Exception {
        // Given the same budget
        limit("{\"tokens_per_day\": " + TOKENS_PER_DAY + ", \"tokens_per_month\": null, \"requests_per_minute\": null}");
        awaitWindowsWithSecondsLeft(10);

        // When all 200 arrive at once, half on each instance
        var answers = fire(Duration.ZERO);

        // Then the limit holds; the share served depends on the reservation bound (45 tokens for a request costing 20)
        long served = assertServedOrRefused(answers, "tokens_per_day");
        awaitNothingReserved("tokens_today");
        long billed = billedOnceWritten(served);
        System.out.printf("[measured] tokens_per_day %d, 200 at once: %d of %d requests served, billed %d tokens = %.1f %% of the limit"
                + " (reserving %d each, at most %d fit at once)%n", TOKENS_PER_DAY, served, REQUESTS, billed,
                100.0 * billed / TOKENS_PER_DAY, BOUND, TOKENS_PER_DAY / BOUND);
        assertThat(billed).isEqualTo(served * COST).isLessThanOrEqualTo(TOKENS_PER_DAY);
        assertThat(served).isPositive();
    }

    @Test
    void requestsPerMinuteHoldAcrossTwoInstancesAtFortyRequestsASecond() throws Exception {
        // Given a user allowed 40 % of 200 requests a minute, and a minute with room for the whole run
        limit("{\"tokens_per_day\": null, \"tokens_per_month\": null, \"requests_per_minute\": " + REQUESTS_PER_MINUTE + "}");
        awaitWindowsWithSecondsLeft(10);

        // When 200 requests arrive at 40 a second, alternating between the instances
        var answers = fire(EVERY);

        // Then no more than the limit were served, and at least 80 % of it
        long served = assertServedOrRefused(answers, "requests_per_minute");
        awaitNothingReserved("requests_this_minute");
        billedOnceWritten(served);
        System.out.printf("[measured] requests_per_minute %d, 40/s alternating: %d of %d requests served = %.1f %% of the limit%n",
                REQUESTS_PER_MINUTE, served, REQUESTS, 100.0 * served / REQUESTS_PER_MINUTE);
        assertThat(served).isLessThanOrEqualTo(REQUESTS_PER_MINUTE).isGreaterThanOrEqualTo(REQUESTS_PER_MINUTE * 80 / 100);
    }

    @Test
    void requestsPerMinuteHoldWhenAllRequestsArriveAtOnce() throws Exception {
        limit("{\"tokens_per_day\": null, \"tokens_per_month\": null, \"requests_per_minute\": " + REQUESTS_PER_MINUTE + "}");
        awaitWindowsWithSecondsLeft(10);

        var answers = fire(Duration.ZERO);

        long served = assertServedOrRefused(answers, "requests_per_minute");
        awaitNothingReserved("requests_this_minute");
        billedOnceWritten(served);
        System.out.printf("[measured] requests_per_minute %d, 200 at once: %d of %d requests served = %.1f %% of the limit%n",
                REQUESTS_PER_MINUTE, served, REQUESTS, 100.0 * served / REQUESTS_PER_MINUTE);
        assertThat(served).isLessThanOrEqualTo(REQUESTS_PER_MINUTE).isPositive();
    }

    @Test
    void overALimitTheOpenAiApiAnswersOpenAisOwn429() throws Exception {
        // Given a user allowed one request a minute, and 1,000 tokens a month
        limit("{\"tokens_per_day\": null, \"tokens_per_month\": 1000, \"requests_per_minute\": 1}");
        awaitWindowsWithSecondsLeft(5);
        String body = "{\"model\": \"simulated\", \"prompt\": \"one two\", \"max_tokens\": 4}";

        // When a call of two prompts comes: refused whole, none of it billed, nothing held
        var twoPrompts = send(port, "POST", "/v1/completions", gateway.bearer(user),
                "{\"model\": \"simulated\", \"prompt\": [\"one\", \"two\"], \"max_tokens\": 4}");
        assertThat(twoPrompts.statusCode()).as(twoPrompts.body()).isEqualTo(429);
        assertThat(send(port, "POST", "/v1/completions", gateway.bearer(user), body).statusCode()).isEqualTo(200);
        assertThat(billedOnceWritten(1)).as("only the single prompt's row").isEqualTo(4);

        // When a second request comes within the minute
        var refused = send(secondPort, "POST", "/v1/completions", gateway.bearer(user), body);

        // Then it is OpenAI's 429 rate_limit_exceeded, with Retry-After and the limit's fields
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
        assertThat(refused.headers().firstValue("Retry-After")).isPresent();
        JsonNode error = json.readTree(refused.body()).get("error");
        assertThat(error.get("code").asString()).isEqualTo("rate_limit_exceeded");
        assertThat(error.get("type").asString()).isEqualTo("requests");
        assertThat(error.get("limit").asString()).isEqualTo("requests_per_minute");
        assertThat(error.get("limit_value").asLong()).isEqualTo(1);
        assertThat(error.get("remaining").asLong()).isZero();
        assertThat(Instant.parse(error.get("resets_at").asString())).isAfter(Instant.now());

        // When the month's budget is too small for a request
        limit("{\"tokens_per_day\": null, \"tokens_per_month\": 10, \"requests_per_minute\": null}");
        var quota = send(port, "POST", "/v1/chat/completions", gateway.bearer(user),
                "{\"model\": \"simulated\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 4}");

        // Then it is insufficient_quota
        assertThat(quota.statusCode()).as(quota.body()).isEqualTo(429);
        assertThat(json.readTree(quota.body()).at("/error/code").asString()).isEqualTo("insufficient_quota");
        assertThat(json.readTree(quota.body()).at("/error/limit").asString()).isEqualTo("tokens_per_month");
    }

    @Test
    void usageShowsTheLimitsAndWhatRemainsOnEveryInstance() throws Exception {
        // Given a user with limits, who made one request costing 20 tokens
        limit("{\"tokens_per_day\": 1000, \"tokens_per_month\": null, \"requests_per_minute\": 50}");
        awaitWindowsWithSecondsLeft(5);
        assertThat(complete(port).statusCode()).isEqualTo(200);

        // Then the usage, on the other instance too, shows the limits, and what remains once reported (within a second)
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        JsonNode usage;
        do {
            usage = json.readTree(send(secondPort, "GET", "/usage/" + user, gateway.bearer(user), null).body());
        } while (usage.at("/remaining/tokens_today").asLong() != 1000 - COST && System.nanoTime() < deadline && pause());
        assertThat(usage.at("/limits/tokens_per_day").asLong()).isEqualTo(1000);
        assertThat(usage.at("/limits/tokens_per_month").isNull()).isTrue();
        assertThat(usage.at("/limits/requests_per_minute").asLong()).isEqualTo(50);
        assertThat(usage.at("/remaining/tokens_today").asLong()).isEqualTo(1000 - COST);
        assertThat(usage.at("/remaining/tokens_this_month").isNull()).isTrue();
        assertThat(usage.at("/remaining/requests_this_minute").asLong()).isEqualTo(49);
        assertThat(usage.at("/reserved/tokens_today").asLong()).as("settled: nothing reserved").isZero();
    }

    @Test
    void aRequestRefusedForItsBodyLeavesRemainingUnchangedAndNothingReserved() throws Exception {
        // Given a limited user who has spent nothing
        limit("{\"tokens_per_day\": 1000, \"tokens_per_month\": null, \"requests_per_minute\": 50}");
        awaitWindowsWithSecondsLeft(5);

        // When requests are refused with 400 for what their bodies say, on /complete and on OpenAI's paths
        List<String[]> refused = List.of(
                new String[] {"/complete", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 10, \"stream\": \"yes\"}"},
                new String[] {"/complete", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 10, \"stream\": 1}"},
                new String[] {"/complete", "{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 10, \"temperature\": 0}"},
                new String[] {"/v1/completions", "{\"model\": \"simulated\", \"prompt\": \"one\", \"max_tokens\": 4, \"stream\": \"yes\"}"},
                new String[] {"/v1/completions", "{\"model\": \"simulated\", \"prompt\": \"one\", \"max_tokens\": 4,"
                        + " \"stream_options\": {\"include_usage\": true}}"},
                new String[] {"/v1/chat/completions", "{\"model\": \"simulated\", \"messages\": [{\"role\": \"user\","
                        + " \"content\": \"hi\"}], \"max_tokens\": 4, \"stream\": \"yes\"}"},
                new String[] {"/v1/chat/completions", "{\"model\": \"simulated\", \"messages\": [], \"max_tokens\": 4}"});
        for (String[] call : refused) {
            var answer = send(port, "POST", call[0], gateway.bearer(user), call[1]);
            assertThat(answer.statusCode()).as(call[0] + " " + call[1] + " → " + answer.body()).isEqualTo(400);
        }

        // Then the whole limit remains, nothing is reserved, and nothing was billed
        JsonNode usage = json.readTree(send(port, "GET", "/usage/" + user, gateway.bearer(user), null).body());
        assertThat(usage.at("/remaining/tokens_today").asLong()).as(usage.toString()).isEqualTo(1000);
        assertThat(usage.at("/remaining/requests_this_minute").asLong()).isEqualTo(50);
        assertThat(usage.at("/reserved/tokens_today").asLong()).isZero();
        assertThat(usage.at("/reserved/requests_this_minute").asLong()).isZero();
        assertThat(usage.at("/reserved/tokens_this_month").isNull()).isTrue();
        assertThat(UsageRows.of(jdbc, user)).isZero();
    }

    @Test
    void theAdminApiStoresLimitsAndRefusesWhatIsNotALimit() throws Exception {
        // a user without own limits has the defaults (none here)
        var defaults = send(port, "GET", "/admin/users/" + user + "/limits", ADMIN, null);
        assertThat(defaults.statusCode()).isEqualTo(200);
        assertThat(json.readTree(defaults.body()).get("source").asString()).isEqualTo("defaults");
        assertThat(json.readTree(send(secondPort, "GET", "/admin/users/" + user + "/limits", ADMIN, null).body()))
                .isEqualTo(json.readTree(("{\"user_id\": %d, \"tokens_per_day\": null, \"tokens_per_month\": null,"
                        + " \"requests_per_minute\": 100000, \"source\": \"defaults\"}").formatted(user)));

        var stored = send(port, "PUT", "/admin/users/" + user + "/limits", ADMIN,
                "{\"tokens_per_day\": 100000, \"tokens_per_month\": null, \"requests_per_minute\": 60}");
        assertThat(stored.statusCode()).as(stored.body()).isEqualTo(200);
        assertThat(json.readTree(stored.body())).isEqualTo(json.readTree("""
                {"user_id": %d, "tokens_per_day": 100000, "tokens_per_month": null, "requests_per_minute": 60, "source": "user"}"""
                .formatted(user)));
        assertThat(json.readTree(send(secondPort, "GET", "/admin/users/" + user + "/limits", ADMIN, null).body()))
                .isEqualTo(json.readTree(stored.body()));

        for (String bad : List.of("", "[]", "{}", "{\"tokens_per_day\": 1, \"tokens_per_month\": 1}",
                "{\"tokens_per_day\": -1, \"tokens_per_month\": null, \"requests_per_minute\": null}",
                "{\"tokens_per_day\": 1.5, \"tokens_per_month\": null, \"requests_per_minute\": null}",
                "{\"tokens_per_day\": \"1\", \"tokens_per_month\": null, \"requests_per_minute\": null}",
                "{\"tokens_per_day\": 9223372036854775808, \"tokens_per_month\": null, \"requests_per_minute\": null}",
                "{\"tokens_per_day\": 1, \"tokens_per_month\": null, \"requests_per_minute\": null, \"burst\": 5}",
                "{\"tokens_per_day\": 1, \"tokens_per_day\": 2, \"tokens_per_month\": null, \"requests_per_minute\": null}",
                "{\"tokens_per_day\": 1")) {
            var refused = send(port, "PUT", "/admin/users/" + user + "/limits", ADMIN, bad);
            assertThat(refused.statusCode()).as(bad + " → " + refused.body()).isEqualTo(400);
            assertThat(refused.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        }
        assertThat(send(port, "GET", "/admin/users/0/limits", ADMIN, null).statusCode()).isEqualTo(400);
        assertThat(send(port, "GET", "/admin/users/abc/limits", ADMIN, null).statusCode()).isEqualTo(400);
        assertThat(send(port, "GET", "/admin/users/" + user + "/limits", gateway.bearer(user), null).statusCode())
                .as("a user's key sets no limits").isEqualTo(401);
        assertThat(send(port, "PUT", "/admin/users/" + user + "/limits", null, "{}").statusCode()).isEqualTo(401);
    }

    // --- helpers

    /** Sets the user's limits through the first instance, and waits until the second has read them too. */
    private void limit(String limits) throws Exception {
        var stored = send(port, "PUT", "/admin/users/" + user + "/limits", ADMIN, limits);
        assertThat(stored.statusCode()).as(stored.body()).isEqualTo(200);
        JsonNode expected = json.readTree(limits);
        long started = System.nanoTime();
        long deadline = started + TimeUnit.SECONDS.toNanos(5);
        JsonNode seen;
        do {
            seen = json.readTree(send(secondPort, "GET", "/usage/" + user, ADMIN, null).body()).get("limits");
        } while (!seen.equals(expected) && System.nanoTime() < deadline && pause());
        assertThat(seen).as("the second instance applies the limits within 5 s").isEqualTo(expected);
        System.out.println("[measured] limits applied by the second instance after "
                + Duration.ofNanos(System.nanoTime() - started).toMillis() + " ms");
    }

    /**
     * Limits count calendar windows: waits, if need be, until the current minute (so also day and month) has this many
     * seconds left, so that a run does not straddle two windows.
     */
    private static void awaitWindowsWithSecondsLeft(int seconds) throws InterruptedException {
        Instant now = Instant.now();
        Instant end = now.truncatedTo(ChronoUnit.MINUTES).plus(1, ChronoUnit.MINUTES);
        if (Duration.between(now, end).compareTo(Duration.ofSeconds(seconds)) < 0) {
            Thread.sleep(Duration.between(now, end).plusMillis(100)); // waits for the clock, not for another thread
        }
    }

    /**
     * Sends 200 requests, alternating between the instances, {@code every} apart. All at once (zero) means first
     * opening 200 connections with as many requests of an unlimited user, so that the measured ones do not wait for
     * connections but leave together.
     */
    private List<Answer> fire(Duration every) throws Exception {
        if (every.isZero()) {
            send(gateway.bearer(user + 1), Duration.ZERO);
        }
        return send(gateway.bearer(user), every);
    }

    private List<Answer> send(String bearer, Duration every) throws Exception {
        List<CompletableFuture<Answer>> pending = new ArrayList<>();
        try (var timer = Executors.newSingleThreadScheduledExecutor()) {
            List<java.util.concurrent.ScheduledFuture<?>> sent = new ArrayList<>();
            for (int i = 0; i < REQUESTS; i++) {
                int to = i % 2 == 0 ? port : secondPort;
                var answer = new CompletableFuture<Answer>();
                pending.add(answer);
                Runnable send = () -> http.sendAsync(request(to, bearer), HttpResponse.BodyHandlers.ofString())
                        .whenComplete((response, failure) -> {
                            if (failure != null) {
                                answer.completeExceptionally(failure);
                            } else {
                                answer.complete(new Answer(to, response));
                            }
                        });
                sent.add(timer.schedule(send, every.toNanos() * i, TimeUnit.NANOSECONDS));
            }
            for (var each : sent) {
                each.get(60, TimeUnit.SECONDS);
            }
        }
        long started = System.nanoTime();
        var answers = CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new))
                .thenApply(done -> pending.stream().map(CompletableFuture::join).toList())
                .get(60, TimeUnit.SECONDS);
        if (every.isZero()) {
            System.out.println("[measured] 200 sent at once, answered within " + Duration.ofNanos(System.nanoTime() - started).toMillis() + " ms");
        }
        return answers;
    }

    private record Answer(int port, HttpResponse<String> response) {}

    private HttpRequest request(int to, String bearer) {
        return HttpRequest.newBuilder(URI.create("http://localhost:" + to + "/complete"))
                .timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json")
                .header("Authorization", bearer)
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + PROMPT + "\", \"max_tokens\": 10}"))
                .build();
    }

    /** Every answer is a 200 costing {@link #COST} or a 429 naming the limit; returns how many were served. */
    private long assertServedOrRefused(List<Answer> answers, String limit) {
        long served = 0;
        for (Answer answer : answers) {
            var response = answer.response();
            if (response.statusCode() == 200) {
                assertThat(json.readTree(response.body()).get("tokens").asInt()).isEqualTo(COST);
                served++;
                continue;
            }
            assertThat(response.statusCode()).as(response.body()).isEqualTo(429);
            assertThat(response.headers().firstValue("Content-Type")).hasValue("application/problem+json");
            assertThat(Long.parseLong(response.headers().firstValue("Retry-After").orElseThrow())).isPositive();
            JsonNode problem = json.readTree(response.body());
            assertThat(problem.get("limit").asString()).isEqualTo(limit);
            assertThat(problem.get("remaining").asLong()).isNotNegative();
            assertThat(problem.get("resets_at").asString()).isNotBlank();
        }
        return served;
    }

    /** Once every answer is in, every admitted request is settled on both instances (within 5 s): nothing stays reserved. */
    private void awaitNothingReserved(String window) throws Exception {
        for (int to : List.of(port, secondPort)) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            JsonNode usage;
            do {
                usage = json.readTree(send(to, "GET", "/usage/" + user, gateway.bearer(user), null).body());
            } while (usage.at("/reserved/" + window).asLong() != 0 && System.nanoTime() < deadline && pause());
            assertThat(usage.at("/reserved/" + window).asLong()).as("reserved on port " + to + ": " + usage).isZero();
        }
    }

    private static long servedOn(List<Answer> answers, int port) {
        return answers.stream().filter(a -> a.port() == port && a.response().statusCode() == 200).count();
    }

    /** The user's billed tokens, once the usage ledger has written a row for each served request (and no more). */
    private long billedOnceWritten(long served) throws InterruptedException {
        UsageRows.await(jdbc, user, (int) served);
        assertThat(UsageRows.of(jdbc, user)).as("a row per served request, none for a refused one").isEqualTo(served);
        return jdbc.sql("SELECT coalesce(sum(total_tokens), 0) FROM token_usage WHERE user_id = ?").param(user)
                .query(Long.class).single();
    }

    private HttpResponse<String> complete(int to) throws Exception {
        return http.send(request(to, gateway.bearer(user)), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> send(int to, String method, String path, String authorization, String body) throws Exception {
        var request = HttpRequest.newBuilder(URI.create("http://localhost:" + to + path)).timeout(Duration.ofSeconds(30))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            request.header("Content-Type", "application/json");
        }
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Polls again in 50 ms: the instances read limits and report usage on their own schedule. */
    private static boolean pause() throws InterruptedException {
        Thread.sleep(50);
        return true;
    }
}
