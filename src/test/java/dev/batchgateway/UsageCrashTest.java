package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
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
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
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

    /** Generous: a loaded two-core machine starts a gateway in seconds, not a minute. */
    private static final Duration SLACK = Duration.ofSeconds(90);
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
    private final List<Process> children = new ArrayList<>();

    @AfterEach
    void stopChildren() throws InterruptedException {
        for (Process child : children) {
            child.destroyForcibly();
            child.waitFor(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void anInstanceKilledUnderLoadLosesNoUsageRowOfAnAnswerItGave() throws Exception {
        // Given a gateway in a process of its own, and clients that keep asking it
        var first = Instance.start(this, "first");
        String bearer = first.client.bearer(user);
        Queue<String> answered = new ConcurrentLinkedQueue<>();
        var asking = new AtomicBoolean(true);
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < CLIENTS; i++) {
                clients.execute(() -> askUntilRefused(first, bearer, asking, answered));
            }

            // When it is killed with SIGKILL while answers flow
            awaitCondition("300 answers before the kill", () -> answered.size() >= 300);
            first.process.destroyForcibly();
            assertThat(first.process.waitFor(SLACK.toSeconds(), TimeUnit.SECONDS)).as("the killed gateway ended").isTrue();
            asking.set(false);
        }
        assertThat(first.process.exitValue()).as("exit status of a SIGKILL").isEqualTo(137);
        Set<String> answers = new HashSet<>(answered);

        // And a new instance starts on the same database and journal directory
        var second = Instance.start(this, "second");

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
        second.process.destroy();
        assertThat(second.process.waitFor(SLACK.toSeconds(), TimeUnit.SECONDS)).as("the second gateway stopped").isTrue();
    }

    private void askUntilRefused(Instance gateway, String bearer, AtomicBoolean asking, Queue<String> answered) {
        var random = ThreadLocalRandom.current();
        while (asking.get()) {
            var request = HttpRequest.newBuilder(gateway.client.uri("/complete"))
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

    /** A gateway in a child JVM on free ports, its output in a file, ready when this returns. */
    private record Instance(Process process, GatewayClient client) {

        static Instance start(UsageCrashTest test, String name) throws Exception {
            int port = freePort();
            int managementPort = freePort();
            var database = TestDatabase.get();
            Path java = Path.of(System.getProperty("java.home"), "bin", "java");
            Path log = test.logs.resolve(name + ".log");
            var process = new ProcessBuilder(
                    java.toString(),
                    "-XX:TieredStopAtLevel=1",
                    "-Xmx512m",
                    "-cp", System.getProperty("java.class.path"),
                    BatchGatewayApplication.class.getName(),
                    "--server.port=" + port,
                    "--management.server.port=" + managementPort,
                    "--spring.datasource.url=" + database.url(),
                    "--spring.datasource.username=" + database.username(),
                    "--spring.datasource.password=" + database.password(),
                    "--gateway.worker.type=simulated",
                    "--gateway.batch.max-wait=2ms",
                    "--gateway.usage.journal-dir=" + test.journalDirectory,
                    "--gateway.identity.admin-token=" + GatewayApplicationTest.ADMIN_TOKEN)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            test.children.add(process);
            var client = new GatewayClient(port, managementPort);
            URI readiness = client.uri("/actuator/health/readiness");
            awaitCondition("the " + name + " gateway ready (its output: " + log + ")", () -> {
                assertThat(process.isAlive()).as("the " + name + " gateway is running; its output:\n" + tail(log)).isTrue();
                try {
                    return test.http.send(HttpRequest.newBuilder(readiness).timeout(Duration.ofSeconds(5)).build(),
                            HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
                } catch (IOException notYet) {
                    return false;
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            });
            return new Instance(process, client);
        }

        private static String tail(Path log) {
            try {
                List<String> lines = Files.readAllLines(log);
                return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
            } catch (IOException e) {
                return "(unreadable: " + e + ")";
            }
        }
    }

    private static int freePort() throws IOException {
        try (var socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    private static void awaitCondition(String what, BooleanSupplier condition) throws InterruptedException {
        long started = System.nanoTime();
        while (!condition.getAsBoolean()) {
            long waited = System.nanoTime() - started;
            assertThat(waited).as("waited %.1f s for %s, expected at most %d s",
                    waited / 1e9, what, SLACK.toSeconds()).isLessThan(SLACK.toNanos());
            Thread.sleep(50);
        }
    }
}
