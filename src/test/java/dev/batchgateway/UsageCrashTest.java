package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;
import tools.jackson.databind.json.JsonMapper;

/**
 * An instance killed with SIGKILL under load loses no usage row: every answer that reached a client has its row once a
 * new instance has started on the same database and journal directory. The gateway runs as a child JVM (the test's own
 * java and class path), so that it can be killed for real.
 */
class UsageCrashTest {

    private static final int CLIENTS = 24;
    /** Rows journaled by the dead instance are replayed as the new one starts, well within this. */
    private static final Duration REPLAY_TIME = Duration.ofSeconds(20);

    @TempDir
    Path journalDirectory;

    @TempDir
    Path logs;

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    private final List<ChildGateway> children = new ArrayList<>();

    @AfterEach
    void stopChildren() throws InterruptedException {
        for (ChildGateway child : children) {
            child.close();
        }
    }

    @Test
    void anInstanceKilledUnderLoadLosesNoUsageRowOfAnAnswerItGave() throws Exception {
        // Given a gateway in a process of its own, and clients that keep asking it
        var first = start("first");
        String bearer = first.client().bearer(user);
        Queue<String> answered = new ConcurrentLinkedQueue<>();
        var asking = new AtomicBoolean(true);
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < CLIENTS; i++) {
                clients.execute(() -> askUntilRefused(first, bearer, asking, answered));
            }

            try {
                // When it is killed with SIGKILL while answers flow
                ChildGateway.awaitCondition("300 answers before the kill", () -> answered.size() >= 300);
                first.kill();
            } finally {
                asking.set(false); // else closing the executor would wait for clients that never stop
            }
        }
        Set<String> answers = new HashSet<>(answered);

        // And a new instance starts on the same database and journal directory
        var second = start("second");

        // Then every answer a client got has its usage row
        var database = TestDatabase.get();
        var store = new SingleConnectionDataSource(database.url(), database.username(), database.password(), true);
        try {
            var jdbc = JdbcClient.create(store);
            Set<String> missing = new HashSet<>(answers);
            long started = System.nanoTime();
            // the new instance replays what the dead one journaled as it starts; give it a little while
            while (!missing.isEmpty() && System.nanoTime() - started < REPLAY_TIME.toNanos()) {
                missing.removeAll(jdbc.sql("SELECT request_id::text FROM token_usage WHERE user_id = ?")
                        .param(user).query(String.class).set());
                Thread.sleep(100);
            }
            assertThat(missing).as("answers without a usage row %.1f s after the new instance was ready, of %d answers",
                    (System.nanoTime() - started) / 1e9, answers.size()).isEmpty();
        } finally {
            store.destroy();
        }
        second.stop();
    }

    private ChildGateway start(String name) throws InterruptedException {
        var gateway = ChildGateway.start(name, logs, journalDirectory, "--gateway.batch.max-wait=2ms");
        children.add(gateway);
        return gateway;
    }

    private void askUntilRefused(ChildGateway gateway, String bearer, AtomicBoolean asking, Queue<String> answered) {
        var random = ThreadLocalRandom.current();
        while (asking.get()) {
            var request = HttpRequest.newBuilder(gateway.client().uri("/complete"))
                    .header("Content-Type", "application/json")
                    .header("Authorization", bearer)
                    .POST(HttpRequest.BodyPublishers.ofString(
                            "{\"prompt\": \"" + "word ".repeat(random.nextInt(1, 20)) + "end\", \"user_id\": " + user + "}"))
                    .timeout(Duration.ofSeconds(30))
                    .build();
            try {
                var response = http.send(request, HttpResponse.BodyHandlers.ofString());
                if (response.statusCode() == 200) {
                    answered.add(json.readTree(response.body()).get("request_id").asString());
                }
            } catch (IOException killed) {
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
