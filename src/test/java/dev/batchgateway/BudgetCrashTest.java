package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * An instance killed with SIGKILL while it holds a large slice of a user's daily budget, with requests in flight,
 * strands none of it beyond one lease expiry (issue 25): right after the kill its hold still counts (a surviving
 * instance refuses a request that needs more than what is left beside it), and within the expiry the surviving instance
 * admits a request that needs the whole remaining budget, limit less billed. The user is never billed beyond the limit.
 * Both gateways run as child JVMs ({@link ChildGateway}) on the test's database, so that one can be killed for real.
 */
class BudgetCrashTest {

    /** Short, so that the test waits seconds; the shortest the gateway allows is 3 s. */
    private static final Duration LEASE_EXPIRY = Duration.ofSeconds(6);
    /** Beyond the expiry: the probes' round trips and the pauses of a loaded two-core machine. */
    private static final Duration EXPIRY_SLACK = Duration.ofSeconds(10);
    private static final long TOKENS_PER_DAY = 30_000;
    private static final int CLIENTS = 24;
    /**
     * The load's prompts are one word of 300 to 900 letters with max_tokens 256: each reserves 572 to 1,172 tokens (one
     * per byte, 16, max_tokens) and costs 2 (the simulated worker counts words). 24 in flight reserve about 21,000:
     * more than half of the limit, so that the instance's slice is tight and grows to most of the limit, while what
     * is billed grows slowly.
     */
    private static final int LOAD_MAX_TOKENS = 256;
    private static final int ALLOWANCE = 16;
    /** The probes ask for max_tokens 1: what they reserve is their prompt's bytes + 17. */
    private static final int PROBE_MAX_TOKENS = 1;

    @TempDir
    Path journalDirectory;

    @TempDir
    Path logs;

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    private final List<ChildGateway> children = new ArrayList<>();
    private SingleConnectionDataSource database;
    private JdbcClient jdbc;

    @BeforeEach
    void connect() {
        var coordinates = TestDatabase.get();
        database = new SingleConnectionDataSource(coordinates.url(), coordinates.username(), coordinates.password(), true);
        jdbc = JdbcClient.create(database);
    }

    @AfterEach
    void stopChildren() throws InterruptedException {
        for (ChildGateway child : children) {
            child.close();
        }
        database.destroy();
    }

    /** One instance's hold of the user's current day, as PostgreSQL has it, with the window's billed amount. */
    private record Hold(String instance, long held, double secondsLeft, long consumed) {
        boolean alive() {
            return secondsLeft > 0;
        }
    }

    @Test
    void aKilledInstancesBudgetSliceCountsUntilItsLeaseExpiresAndIsEveryonesAgainWithinIt() throws Exception {
        // Given two gateways on one database with a 6 s lease expiry, and a user with a daily token limit
        var starting = List.of(startAsync("first"), startAsync("second"));
        CompletableFuture.allOf(starting.toArray(CompletableFuture[]::new)).join();
        ChildGateway first = starting.get(0).join();
        ChildGateway second = starting.get(1).join();
        String bearer = first.client().bearer(user);
        setDailyLimit(first, TOKENS_PER_DAY);
        awaitLimitKnown(second);
        warmUp(second);

        // When the first holds most of the budget with requests in flight, under load of 24 clients
        Queue<String> answered = new ConcurrentLinkedQueue<>();
        var inFlight = new AtomicInteger();
        var asking = new AtomicBoolean(true);
        List<String> overLimit = new ArrayList<>();
        Hold dead;
        long killedAt;
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < CLIENTS; i++) {
                clients.execute(() -> askWhile(first, bearer, asking, inFlight, answered));
            }
            try {
                long halfTheLimit = TOKENS_PER_DAY / 2;
                var lastSeen = new AtomicReference<List<Hold>>(List.of());
                ChildGateway.awaitCondition(() -> "the first gateway to hold half of the limit, renewed in the last second, "
                        + "with requests in flight; last seen: " + answered.size() + " answers, " + inFlight.get()
                        + " in flight, holds " + lastSeen.get(), EXPIRY_SLACK.multipliedBy(3), () -> {
                    List<Hold> holds = holds();
                    lastSeen.set(holds);
                    if (!holds.isEmpty() && holds.getFirst().consumed + aliveHeld(holds) > TOKENS_PER_DAY) {
                        overLimit.add(holds.toString());
                    }
                    return answered.size() >= 100 && inFlight.get() > 0 && holds.size() == 1
                            && holds.getFirst().held >= halfTheLimit
                            && holds.getFirst().secondsLeft >= LEASE_EXPIRY.toSeconds() - 1;
                });
                // ... and is killed with SIGKILL
                first.kill();
                killedAt = System.nanoTime();
                List<Hold> holds = holds();
                assertThat(holds).as("holds of the user's day right after the kill: the first gateway's only").hasSize(1);
                dead = holds.getFirst();
            } finally {
                asking.set(false); // else closing the executor would wait for clients that never stop
            }
        }
        assertThat(overLimit).as("samples where billed + what unexpired holds keep passed the limit of %d", TOKENS_PER_DAY)
                .isEmpty();
        assertThat(dead.held).as("the killed gateway's hold (%s): a large part of the limit of %d", dead, TOKENS_PER_DAY)
                .isGreaterThanOrEqualTo(TOKENS_PER_DAY / 4);
        long unbilled = TOKENS_PER_DAY - dead.consumed;

        // Then right after the kill its hold still counts: a request needing more than what is left beside it is refused
        long beyondFree = unbilled - dead.held / 2;
        var refused = complete(second, bearer, beyondFree);
        double refusedAfter = secondsSince(killedAt);
        assertThat(refused.statusCode()).as("a request reserving %d of the %d not billed, %d of them held by the killed "
                        + "gateway, answered %.1f s after the kill, its hold expiring %.1f s after it: %s",
                beyondFree, unbilled, dead.held, refusedAfter, dead.secondsLeft, shortened(refused.body()))
                .isEqualTo(429);
        assertThat(json.readTree(refused.body()).path("limit").asString()).isEqualTo("tokens_per_day");
        // and every usage row the killed gateway wrote was charged to the budget in its own commit: none is free again
        // when its hold expires
        long billedByRows = billedByRows();
        assertThat(billedByRows).as("tokens of the user's usage rows when the gateway was killed, against what the budget "
                + "counts billed (%s)", dead).isEqualTo(dead.consumed);

        // And within one lease expiry the whole of it is available again: a request reserving all not billed is admitted
        HttpResponse<String> admitted = null;
        HttpResponse<String> lastRefusal = null;
        int refusals = 0;
        double firstRefusal = 0;
        double lastRefused = 0;
        long deadline = killedAt + LEASE_EXPIRY.plus(EXPIRY_SLACK).toNanos();
        while (admitted == null && System.nanoTime() - deadline < 0) {
            var answer = complete(second, bearer, unbilled);
            if (answer.statusCode() == 200) {
                admitted = answer;
            } else {
                lastRefused = secondsSince(killedAt);
                firstRefusal = refusals++ == 0 ? lastRefused : firstRefusal;
                lastRefusal = answer;
                Thread.sleep(200); // the probe's period, not a synchronisation: each probe is its own round trip
            }
        }
        double admittedAfter = secondsSince(killedAt);
        assertThat(admitted).as("a request reserving all %d tokens not billed, tried until %.1f s after the kill (lease "
                        + "expiry %d s + slack %d s): refused %d times from %.1f s to %.1f s after the kill, last with %s",
                unbilled, admittedAfter, LEASE_EXPIRY.toSeconds(), EXPIRY_SLACK.toSeconds(), refusals, firstRefusal,
                lastRefused, lastRefusal == null ? "-" : lastRefusal.statusCode() + " " + shortened(lastRefusal.body()))
                .isNotNull();
        Hold expired = holds().stream().filter(hold -> hold.instance.equals(dead.instance)).findFirst().orElseThrow();
        assertThat(expired.alive()).as("the killed gateway's hold, when all the budget was admitted %.1f s after the kill "
                + "(not before it expired: %s)", admittedAfter, expired).isFalse();

        System.out.printf("[measured] killed with %d answers given, holding %d of a limit of %d (%d billed, as many in its "
                        + "usage rows; hold expiring %.1f s later); refused at %.1f s, all %d not billed admitted at %.1f s "
                        + "after the kill%n", answered.size(), dead.held, TOKENS_PER_DAY, dead.consumed, dead.secondsLeft,
                refusedAfter, unbilled, admittedAfter);

        // And the user is never billed beyond the limit, by the usage rows or by what the instances reported
        long probeCost = json.readTree(admitted.body()).path("tokens").asLong();
        Awaitility.await("the second gateway's report of what the probe was billed").atMost(EXPIRY_SLACK)
                .pollInterval(Duration.ofMillis(100))
                .until(() -> holds().getFirst().consumed >= dead.consumed + probeCost);
        long consumed = holds().getFirst().consumed;
        long rows = billedByRows();
        assertThat(consumed).as("tokens reported billed of a limit of %d", TOKENS_PER_DAY).isLessThanOrEqualTo(TOKENS_PER_DAY);
        assertThat(rows).as("tokens of the user's usage rows, of a limit of %d", TOKENS_PER_DAY)
                .isLessThanOrEqualTo(TOKENS_PER_DAY);
        second.stop();
    }

    private CompletableFuture<ChildGateway> startAsync(String name) {
        var started = new CompletableFuture<ChildGateway>();
        Thread.ofVirtual().name("start-" + name).start(() -> {
            try {
                var gateway = ChildGateway.start(name, logs, journalDirectory.resolve(name),
                        "--gateway.simulated.latency=100ms",
                        "--gateway.batch.max-wait=2ms",
                        "--gateway.budget.lease-expiry=" + LEASE_EXPIRY.toSeconds() + "s",
                        "--gateway.budget.statement-timeout=2s");
                synchronized (children) {
                    children.add(gateway);
                }
                started.complete(gateway);
            } catch (Throwable e) {
                started.completeExceptionally(e);
            }
        });
        return started;
    }

    /** The holds of the user's current day (UTC), as PostgreSQL has them. */
    private List<Hold> holds() {
        return jdbc.sql("""
                        SELECT h.instance_id::text AS instance, h.held,
                               extract(epoch FROM h.expires_at - clock_timestamp())::float8 AS seconds_left, w.consumed
                        FROM budget_hold h JOIN budget_window w USING (user_id, kind, window_start)
                        WHERE h.user_id = ? AND h.kind = 'day' AND h.window_start = date_trunc('day', clock_timestamp(), 'UTC')
                        ORDER BY h.instance_id""")
                .param(user)
                .query((rs, row) -> new Hold(rs.getString("instance"), rs.getLong("held"), rs.getDouble("seconds_left"),
                        rs.getLong("consumed")))
                .list();
    }

    /** What the user's usage rows bill: every answer's row is committed before the answer leaves. */
    private long billedByRows() {
        return jdbc.sql("SELECT coalesce(sum(total_tokens), 0) FROM token_usage WHERE user_id = ?")
                .param(user).query(Long.class).single();
    }

    private static long aliveHeld(List<Hold> holds) {
        return holds.stream().filter(Hold::alive).mapToLong(Hold::held).sum();
    }

    private void setDailyLimit(ChildGateway gateway, long tokensPerDay) {
        var answer = gateway.client().send(HttpRequest.newBuilder(gateway.client().uri("/admin/users/" + user + "/limits"))
                .header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN)
                .header("Content-Type", "application/json")
                .PUT(HttpRequest.BodyPublishers.ofString("{\"tokens_per_day\": " + tokensPerDay
                        + ", \"tokens_per_month\": null, \"requests_per_minute\": null}")));
        assertThat(answer.statusCode()).as("setting the limit: %s", answer.body()).isEqualTo(200);
    }

    /** Limits reach other instances within about a second: the second must apply this one before it is probed. */
    private void awaitLimitKnown(ChildGateway gateway) throws InterruptedException {
        ChildGateway.awaitCondition("the second gateway to apply the user's daily limit", EXPIRY_SLACK, () -> {
            var usage = gateway.client().get("/usage/" + user);
            return usage.statusCode() == 200
                    && json.readTree(usage.body()).path("limits").path("tokens_per_day").asLong(-1) == TOKENS_PER_DAY;
        });
    }

    /** One answer for another user, without limits, so that the probes find the second gateway's request path warm. */
    private void warmUp(ChildGateway gateway) {
        long other = user == 1 ? 2 : user - 1;
        var answer = gateway.client().complete(java.util.Map.of("prompt", "warm up", "user_id", other));
        assertThat(answer.statusCode()).as("a warm-up request: %s", answer.body()).isEqualTo(200);
    }

    /** A request of the user that reserves exactly this many tokens of its day: a one-word prompt and max_tokens 1. */
    private HttpResponse<String> complete(ChildGateway gateway, String bearer, long reserving) {
        int letters = Math.toIntExact(reserving - ALLOWANCE - PROBE_MAX_TOKENS);
        return gateway.client().send(HttpRequest.newBuilder(gateway.client().uri("/complete"))
                .header("Content-Type", "application/json")
                .header("Authorization", bearer)
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + "x".repeat(letters) + "\", \"user_id\": " + user
                        + ", \"max_tokens\": " + PROBE_MAX_TOKENS + "}")));
    }

    private void askWhile(ChildGateway gateway, String bearer, AtomicBoolean asking, AtomicInteger inFlight,
            Queue<String> answered) {
        var random = ThreadLocalRandom.current();
        while (asking.get()) {
            var request = HttpRequest.newBuilder(gateway.client().uri("/complete"))
                    .header("Content-Type", "application/json")
                    .header("Authorization", bearer)
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + "y".repeat(random.nextInt(300, 901))
                            + "\", \"user_id\": " + user + ", \"max_tokens\": " + LOAD_MAX_TOKENS + "}"))
                    .timeout(Duration.ofSeconds(30))
                    .build();
            inFlight.incrementAndGet();
            try {
                var response = http.send(request, HttpResponse.BodyHandlers.ofString());
                if (response.statusCode() == 200) {
                    JsonNode body = json.readTree(response.body());
                    answered.add(body.get("request_id").asString());
                }
            } catch (IOException killed) {
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } finally {
                inFlight.decrementAndGet();
            }
        }
    }

    /** An answer's body for a message: a probe's answer echoes its prompt of thousands of letters. */
    private static String shortened(String body) {
        return body.length() <= 300 ? body : body.substring(0, 300) + "… (" + body.length() + " characters)";
    }

    private static double secondsSince(long nanos) {
        return (System.nanoTime() - nanos) / 1e9;
    }
}
