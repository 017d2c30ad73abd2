package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import dev.batchgateway.completion.UsageJournal;
import dev.batchgateway.completion.UsageLedger;
import io.micrometer.core.instrument.MeterRegistry;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The database goes away while completions flow, and comes back: not one usage row is lost or counted twice. The
 * gateway runs whole (HTTP, simulated worker, Hikari, Flyway, the usage journal in a temporary directory) against its
 * own PostgreSQL, which this test stops and starts again on the same port and data directory.
 */
class UsageOutageTest {

    /** Generous: a loaded two-core CI machine must never make a correct gateway fail. */
    private static final Duration SLACK = Duration.ofSeconds(60);
    private static final int CLIENTS = 8;
    private static final int BUFFER_CAPACITY = 400;

    @TempDir
    Path dataDirectory;

    @TempDir
    Path journalDirectory;

    private final HttpClient http = HttpClient.newHttpClient();
    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    private final Queue<HttpResponse<String>> responses = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean flowing = new AtomicBoolean(true);
    private final Queue<Throwable> unanswered = new ConcurrentLinkedQueue<>();

    private EmbeddedPostgres database;
    private ConfigurableApplicationContext gateway;
    private int port;
    private GatewayClient client;

    @AfterEach
    void stop() throws IOException {
        flowing.set(false);
        if (gateway != null) {
            gateway.close();
        }
        if (database != null) {
            database.close();
        }
    }

    @Test
    void everyServedCompletionHasExactlyOneRowAfterTheDatabaseWasAway() throws Exception {
        // Given the gateway on its own PostgreSQL, with a usage journal of 8 KB (about 60 rows) for the outage, and
        // clients that keep asking
        int databasePort = TestGateway.freePort();
        database = TestDatabase.startOwn(databasePort, dataDirectory);
        gateway = TestGateway.simulated().onDatabaseAt(databasePort)
                .with("gateway.batch.max-wait", "2ms")
                .with("gateway.usage.buffer-capacity", BUFFER_CAPACITY)
                // this test is about usage rows: the clients' key must be honoured for the whole outage, however slowly
                // a loaded machine fills the buffer (KeyStoreOutageTest covers max staleness)
                .with("gateway.key.max-staleness", "10m")
                .with("gateway.usage.journal-dir", journalDirectory)
                .with("gateway.usage.journal-max-size", "8KB")
                .start();
        port = TestGateway.port(gateway);
        client = TestGateway.client(gateway);
        UsageLedger ledger = gateway.getBean(UsageLedger.class);
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < CLIENTS; i++) {
                clients.execute(this::askUntilStopped);
            }
            try {
                flowThroughAnOutage(databasePort, ledger);
            } finally {
                flowing.set(false);
            }
        }
        UsageJournal journal = gateway.getBean(UsageJournal.class);
        awaitCondition("every row written, the journal replayed", () -> ledger.pending() == 0 && journal.isEmpty());
        assertThat(unanswered).as("requests that got no answer").isEmpty();

        // And the rows are exactly the 200 answers: same request ids, same counts, nothing twice
        Map<String, Long> answered = new HashMap<>();
        long promptTokens = 0;
        long completionTokens = 0;
        for (var response : responses) {
            assertThat(response.statusCode()).as(response.body()).isIn(200, 503);
            if (response.statusCode() == 200) {
                JsonNode answer = json.readTree(response.body());
                answered.put(answer.get("request_id").asString(), answer.get("tokens").asLong());
                promptTokens += answer.get("prompt_tokens").asLong();
                completionTokens += answer.get("completion_tokens").asLong();
            }
        }
        var store = new SingleConnectionDataSource(
                "jdbc:postgresql://localhost:" + databasePort + "/postgres", "postgres", "postgres", true);
        try {
            var jdbc = JdbcClient.create(store);
            Map<String, Long> stored = new HashMap<>();
            jdbc.sql("SELECT request_id::text, total_tokens FROM token_usage WHERE user_id = ?").param(user)
                    .query(rs -> {
                        stored.merge(rs.getString(1), rs.getLong(2), (a, b) -> -1L);
                    });
            assertThat(stored).hasSize(answered.size()).isEqualTo(answered);
            List<Long> sums = jdbc.sql("""
                            SELECT count(*), count(DISTINCT request_id), sum(prompt_tokens), sum(completion_tokens)
                            FROM token_usage WHERE user_id = ?""").param(user)
                    .query((rs, n) -> List.of(rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4)))
                    .single();
            assertThat(sums).containsExactly(
                    (long) answered.size(), (long) answered.size(), promptTokens, completionTokens);
        } finally {
            store.destroy();
        }

        // And the outage was seen: writes failed and were retried
        double retried = gateway.getBean(MeterRegistry.class)
                .get("gateway.usage.write.failures").tag("kind", "recoverable").counter().count();
        assertThat(retried).isGreaterThan(0);
    }

    /** Completions flow; the database stops, the journal fills, the database comes back, completions flow again. */
    private void flowThroughAnOutage(int databasePort, UsageLedger ledger) throws Exception {
        awaitCondition("100 completions served", () -> served() >= 100);

        // When the database stops while requests flow
        int servedBeforeOutage = served();
        database.close();

        // Then completions are still served while the journal has room (their rows in it), then turned away with
        // 503 + Retry-After, and the gateway reports itself not ready; asking for usage is a 503 too. (The answers of
        // the rows in the journal may reach their callers just after it fills: they are awaited, not assumed, and
        // counted from before the stop, which on a loaded machine took long enough to answer them all.)
        awaitCondition("the usage journal fills", ledger::saturated);
        awaitCondition("completions served while the database was away", () -> served() > servedBeforeOutage);
        awaitCondition("completions turned away", () -> responses.stream().anyMatch(r -> r.statusCode() == 503));
        assertThat(responses.stream().filter(r -> r.statusCode() == 503).findFirst().orElseThrow()
                .headers().firstValue("Retry-After")).isPresent();
        awaitCondition("not ready", () -> get("/actuator/health/readiness").statusCode() == 503);
        assertThat(get("/usage/" + user).statusCode()).isEqualTo(503);
        assertThat(get("/health").statusCode()).as("liveness is not readiness").isEqualTo(200);

        // When the database comes back on the same port and data directory
        database = TestDatabase.startOwn(databasePort, dataDirectory);

        // Then the gateway is ready again by itself and serves completions again
        awaitCondition("ready again", () -> get("/actuator/health/readiness").statusCode() == 200);
        int servedAfterOutage = served();
        awaitCondition("100 more completions served", () -> served() >= servedAfterOutage + 100);
    }

    private void askUntilStopped() {
        var random = ThreadLocalRandom.current();
        String bearer = client.bearer(user);
        while (flowing.get()) {
            String prompt = "word ".repeat(random.nextInt(1, 20)) + "end";
            var request = HttpRequest.newBuilder(uri("/complete"))
                    .header("Content-Type", "application/json")
                    .header("Authorization", bearer)
                    .POST(HttpRequest.BodyPublishers.ofString(
                            "{\"prompt\": \"" + prompt + "\", \"user_id\": " + user + "}"))
                    .timeout(SLACK)
                    .build();
            try {
                responses.add(http.send(request, HttpResponse.BodyHandlers.ofString()));
            } catch (IOException e) {
                unanswered.add(e);
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private int served() {
        return (int) responses.stream().filter(r -> r.statusCode() == 200).count();
    }

    private HttpResponse<String> get(String path) {
        try {
            return http.send(HttpRequest.newBuilder(uri(path)).header("Authorization", client.bearer(user)).timeout(SLACK).build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private URI uri(String path) {
        return client.uri(path);
    }

    private static void awaitCondition(String what, BooleanSupplier condition) throws InterruptedException {
        long start = System.nanoTime();
        while (!condition.getAsBoolean()) {
            Duration waited = Duration.ofNanos(System.nanoTime() - start);
            if (waited.compareTo(SLACK) > 0) {
                fail(what + ": waited " + waited.toSeconds() + " s, expected within " + SLACK.toSeconds() + " s");
            }
            Thread.sleep(20); // polls a condition; nothing's progress depends on it
        }
    }
}
