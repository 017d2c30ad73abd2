package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.json.JsonMapper;

/**
 * Thousands of callers at once, each with its request in flight at a slow worker (issue 32), over real HTTP: every
 * connection is accepted, every prompt reaches the worker while the others are still there (hundreds of worker calls
 * in flight together), the gateway's health answers on both ports meanwhile, and every caller gets 200; streamed
 * callers that wait hold no request thread. Counts and statuses only: nothing here is timed, the waits are generous
 * for a loaded machine.
 */
@GatewayApplicationTest(properties = {
            "gateway.worker.type=vllm",
            "gateway.worker.model=held",
            "gateway.batch.size=8",
            "gateway.batch.max-wait=20ms",
            "gateway.worker.max-concurrent-batches=" + ManyCallersGatewayTest.CALLERS,
            "gateway.worker.timeout=180s",
            "gateway.request-timeout=180s",
            // a loaded machine may take seconds to read 2,000 requests arriving at once: not what is tested here
            "gateway.header-timeout=180s",
            // nor how fast the database looks keys up when 2,000 requests of cold keys arrive at once (503 beyond)
            "gateway.key.lookups-at-once=" + (2 * ManyCallersGatewayTest.CALLERS),
            "gateway.key.lookup-wait=60s"
        })
class ManyCallersGatewayTest {

    static final int CALLERS = 2_000;
    /** Streamed callers waiting at once for their first event. */
    private static final int STREAMS = 200;
    private static final int USERS = 10;
    /** The longest any wait here may take: generous, the test takes seconds on a quiet machine. */
    private static final long SLACK_SECONDS = 150;
    private static final JsonMapper JSON = JsonMapper.builder().build();

    static final HeldVllm worker = new HeldVllm("held");

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", worker::url);
    }

    @AfterAll
    static void stopWorker() {
        worker.close();
    }

    @LocalServerPort
    int port;

    @Autowired
    GatewayClient gateway;

    @Test
    void twoThousandCallersInFlightAtASlowWorkerAreAllAnsweredAndHealthAnswersMeanwhile() throws Exception {
        // Given room for every caller's connection on both sides of this one JVM (callers, gateway, worker)
        long openFiles = ((com.sun.management.UnixOperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getMaxFileDescriptorCount();
        assertThat(openFiles).as("the open-files limit (ulimit -n) holds %d connections at both ends", CALLERS)
                .isGreaterThanOrEqualTo(3L * CALLERS);
        // and their keys
        List<String> keys = new ArrayList<>();
        for (long user = 1; user <= USERS; user++) {
            keys.add(gateway.bearer(user));
        }

        // When 2,000 callers post at once, each on a connection of its own, and the worker holds every call
        worker.hold();
        List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>(CALLERS);
        try (HttpClient callers = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(SLACK_SECONDS)).build()) {
            try {
                postAndCheck(callers, keys, answers);
            } finally {
                worker.release(); // a failed check must not leave the callers' client waiting for held calls
            }
        }
    }

    private void postAndCheck(HttpClient callers, List<String> keys, List<CompletableFuture<HttpResponse<String>>> answers)
            throws Exception {
        for (int i = 0; i < CALLERS; i++) {
            int user = i % USERS + 1;
            answers.add(callers.sendAsync(HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/complete"))
                    .header("Content-Type", "application/json")
                    .header("Authorization", keys.get(user - 1))
                    .timeout(Duration.ofSeconds(SLACK_SECONDS * 2))
                    .POST(HttpRequest.BodyPublishers.ofString(
                            "{\"prompt\": \"caller " + i + "\", \"user_id\": " + user + ", \"max_tokens\": 1}"))
                    .build(), HttpResponse.BodyHandlers.ofString()));
        }

        // Then every one of their prompts reaches the worker while all the others are still there
        await(() -> worker.heldPrompts() == CALLERS || answers.stream().anyMatch(CompletableFuture::isDone),
                () -> "prompts held at the worker: " + worker.heldPrompts() + " of " + CALLERS);
        assertThat(answers.stream().filter(CompletableFuture::isDone).map(answer -> answer
                        .handle((answered, failed) -> failed == null ? "HTTP " + answered.statusCode() : failed.toString()).join())
                        .toList())
                .as("statuses of callers answered before the worker answered").isEmpty();
        assertThat(worker.heldPrompts()).isEqualTo(CALLERS);
        // in batches of at most 8: hundreds of worker calls in flight together
        assertThat(worker.mostCallsAtOnce()).isGreaterThanOrEqualTo(CALLERS / 8);

        // And no thread waits for a caller's answer: the requests' threads ended when their requests were queued
        Map<String, Long> threads = threadsAlive("request", "batch");
        assertThat(threads.get("batch")).as("the dump lists the calls' threads (held at the worker)").isPositive();
        assertThat(threads.get("request")).as("request threads alive while %d callers wait", CALLERS).isLessThan(CALLERS / 10);

        // And meanwhile the API port's /health and the management port's health answer
        var health = gateway.get("/health");
        assertThat(health.statusCode()).as(health.body()).isEqualTo(200);
        var management = gateway.get("/actuator/health/liveness");
        assertThat(management.statusCode()).as(management.body()).isEqualTo(200);

        // When the worker answers
        worker.release();

        // Then every caller gets 200
        CompletableFuture.allOf(answers.toArray(CompletableFuture[]::new)).get(SLACK_SECONDS, TimeUnit.SECONDS);
        Map<Integer, Integer> statuses = new TreeMap<>();
        answers.forEach(answer -> statuses.merge(answer.join().statusCode(), 1, Integer::sum));
        assertThat(statuses).containsExactly(Map.entry(200, CALLERS));
    }

    @Test
    void streamedCallersWaitingForTheirFirstEventHoldNoRequestThreadAndAreEachCountedAtTheirStreamsEnd() throws Exception {
        // Given a worker that holds every call, and the request counters as they stand
        worker.hold();
        String key = gateway.bearer(1);
        double answered = counted("gateway_requests_total{endpoint=\"/complete\",status=\"200\"}");
        double timed = counted("gateway_request_duration_seconds_count{endpoint=\"/complete\"}");

        // When 200 callers stream at once and wait for their first event
        List<CompletableFuture<HttpResponse<String>>> streams = new ArrayList<>(STREAMS);
        try (HttpClient callers = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(SLACK_SECONDS)).build()) {
            try {
                for (int i = 0; i < STREAMS; i++) {
                    streams.add(callers.sendAsync(HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/complete"))
                            .header("Content-Type", "application/json")
                            .header("Authorization", key)
                            .timeout(Duration.ofSeconds(SLACK_SECONDS * 2))
                            .POST(HttpRequest.BodyPublishers.ofString(
                                    "{\"prompt\": \"stream " + i + "\", \"user_id\": 1, \"max_tokens\": 1, \"stream\": true}"))
                            .build(), HttpResponse.BodyHandlers.ofString()));
                }
                await(() -> worker.heldPrompts() == STREAMS || streams.stream().anyMatch(CompletableFuture::isDone),
                        () -> "streamed prompts held at the worker: " + worker.heldPrompts() + " of " + STREAMS);
                assertThat(streams).as("streams answered before the worker answered").noneMatch(CompletableFuture::isDone);

                // Then the gateway has no request thread per waiting caller: a parked one held its stack on the heap
                long requestThreads = threadsAlive("request").get("request");
                assertThat(requestThreads).as("request threads alive with %d streams waiting", STREAMS).isLessThan(STREAMS / 4);
            } finally {
                worker.release();
            }

            // And when the worker answers, every caller gets its stream: 200, its text, then its done event
            CompletableFuture.allOf(streams.toArray(CompletableFuture[]::new)).get(SLACK_SECONDS, TimeUnit.SECONDS);
            for (var stream : streams) {
                HttpResponse<String> answer = stream.join();
                assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
                assertThat(answer.headers().firstValue("Content-Type")).hasValueSatisfying(type -> assertThat(type).startsWith("text/event-stream"));
                assertThat(answer.body()).startsWith("data: {\"delta\":\" done\"}\n\n").contains("\"done\":true");
            }
        }

        // And each stream is counted and timed once, at its end
        await(() -> counted("gateway_request_duration_seconds_count{endpoint=\"/complete\"}") >= timed + STREAMS,
                () -> "streams timed: " + (counted("gateway_request_duration_seconds_count{endpoint=\"/complete\"}") - timed));
        assertThat(counted("gateway_requests_total{endpoint=\"/complete\",status=\"200\"}")).isEqualTo(answered + STREAMS);
        assertThat(counted("gateway_request_duration_seconds_count{endpoint=\"/complete\"}")).isEqualTo(timed + STREAMS);
    }

    /** How many of the gateway's threads named {@code <prefix>-<n>} are alive now, by prefix, virtual ones included. */
    private static Map<String, Long> threadsAlive(String... prefixes) throws IOException {
        Path dump = Files.createTempDirectory("threads").resolve("threads.json");
        try {
            ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class)
                    .dumpThreads(dump.toString(), HotSpotDiagnosticMXBean.ThreadDumpFormat.JSON);
            var threads = JSON.readTree(dump.toFile()).findValues("threads").stream()
                    .flatMap(container -> container.valueStream())
                    .map(thread -> thread.path("name").asString(""))
                    .toList();
            Map<String, Long> alive = new TreeMap<>();
            for (String prefix : prefixes) {
                alive.put(prefix, threads.stream().filter(name -> name.matches(Pattern.quote(prefix) + "-\\d+")).count());
            }
            return alive;
        } finally {
            Files.deleteIfExists(dump);
            Files.deleteIfExists(dump.getParent());
        }
    }

    private double counted(String series) {
        return gateway.get("/actuator/prometheus").body().lines().filter(line -> line.startsWith(series + " "))
                .mapToDouble(line -> Double.parseDouble(line.substring(series.length() + 1).strip())).findFirst().orElse(0);
    }

    private static void await(BooleanSupplier condition, java.util.function.Supplier<String> state) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(SLACK_SECONDS);
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("within %d s: %s", SLACK_SECONDS, state.get()).isLessThan(deadline);
            Thread.sleep(20); // polling a count, not a synchronisation
        }
    }
}
