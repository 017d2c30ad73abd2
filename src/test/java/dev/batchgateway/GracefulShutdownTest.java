package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.Scheduler;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The application context closes (as on SIGTERM) while 32 callers wait: three batches at the worker and two
 * requests in a batch being formed. Every caller gets an answer, and every completion served is in the database by the
 * time the context has closed.
 */
@ExtendWith(OutputCaptureExtension.class)
class GracefulShutdownTest {

    /** Generous: a loaded two-core CI machine must never make a correct gateway fail. */
    private static final Duration SLACK = Duration.ofSeconds(60);
    private static final int CALLERS = 32;
    private static final int BATCH_SIZE = 10;

    private final HttpClient http = HttpClient.newHttpClient();
    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    private ConfigurableApplicationContext gateway;
    private int port;
    private GatewayClient client;

    @AfterEach
    void stop() {
        if (gateway != null) {
            gateway.close();
        }
    }

    @Test
    void everyWaitingCallerIsAnsweredAndEveryCompletionBilledBeforeTheContextHasClosed(CapturedOutput output) throws Exception {
        // Given a gateway whose worker takes three seconds a batch and whose partial batches wait a minute
        gateway = TestGateway.simulated()
                .with("gateway.simulated.latency", "3s")
                .with("gateway.batch.size", BATCH_SIZE)
                .with("gateway.batch.max-wait", "60s")
                .start();
        port = TestGateway.port(gateway);
        client = TestGateway.client(gateway);
        Scheduler scheduler = gateway.getBean(Scheduler.class);

        List<HttpResponse<String>> answers = new ArrayList<>();
        HttpResponse<String> late;
        try (ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
            // And 32 callers waiting: three full batches at the worker, two requests in a forming batch
            List<CompletableFuture<HttpResponse<String>>> waiting = new ArrayList<>();
            for (int i = 0; i < CALLERS; i++) {
                String prompt = "caller " + "word ".repeat(i);
                waiting.add(CompletableFuture.supplyAsync(() -> complete(prompt), callers));
            }
            awaitCondition("three batches at the worker and two requests forming",
                    () -> scheduler.batchesInFlight() == 3 && scheduler.queued() == 2);

            // When the context closes, as on SIGTERM
            var closing = CompletableFuture.runAsync(gateway::close, callers);

            // Then the gateway reports itself not ready, and a caller arriving now is turned away with 503 (or, had it
            // slipped in before the scheduler stopped taking requests, it goes in the last batch and is billed)
            awaitCondition("readiness refuses traffic", () -> get("/actuator/health/readiness").statusCode() == 503);
            late = complete("late caller");
            assertThat(late.statusCode()).as(late.body()).isIn(200, 503);
            if (late.statusCode() == 503) {
                assertThat(late.headers().firstValue("Retry-After")).isPresent();
            }

            // And every waiting caller gets its answer
            closing.get(SLACK.toSeconds(), TimeUnit.SECONDS);
            for (var answer : waiting) {
                answers.add(answer.get(SLACK.toSeconds(), TimeUnit.SECONDS));
            }
        }
        assertThat(answers).allSatisfy(answer -> assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200));

        // And the log has one line where the drain begins and one where it ends
        assertThat(output.getOut().lines().filter(line -> line.contains("shutdown: drain begins"))).hasSize(1);
        assertThat(output.getOut().lines().filter(line -> line.contains("shutdown: drain ended, every request answered; "
                + "every usage row written"))).hasSize(1);

        // And, with the context closed, every completion served is in the database with its counts
        List<HttpResponse<String>> served = new ArrayList<>(answers);
        if (late.statusCode() == 200) {
            served.add(late);
        }
        var database = TestDatabase.get();
        var store = new SingleConnectionDataSource(database.url(), database.username(), database.password(), true);
        try {
            var jdbc = JdbcClient.create(store);
            for (var answer : served) {
                JsonNode completion = json.readTree(answer.body());
                var row = jdbc.sql("""
                                SELECT user_id, prompt_tokens, completion_tokens, total_tokens
                                FROM token_usage WHERE request_id = ?::uuid""")
                        .param(completion.get("request_id").asString())
                        .query((rs, n) -> List.of(rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4)))
                        .optional();
                assertThat(row).as("the row of " + completion.get("request_id")).hasValue(List.of(user,
                        completion.get("prompt_tokens").asLong(), completion.get("completion_tokens").asLong(),
                        completion.get("tokens").asLong()));
            }
            assertThat(jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id = ?").param(user).query(Long.class)
                    .single()).isEqualTo(served.size());
        } finally {
            store.destroy();
        }
    }

    private HttpResponse<String> get(String path) {
        return send(HttpRequest.newBuilder(uri(path)).timeout(SLACK).build());
    }

    private HttpResponse<String> complete(String prompt) {
        return send(HttpRequest.newBuilder(uri("/complete"))
                .header("Content-Type", "application/json")
                .header("Authorization", client.bearer(user))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + prompt + "\", \"user_id\": " + user + "}"))
                .timeout(SLACK)
                .build());
    }

    private URI uri(String path) {
        return client.uri(path);
    }

    private HttpResponse<String> send(HttpRequest request) {
        try {
            return http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new IllegalStateException("a request got no answer", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static void awaitCondition(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + SLACK.toNanos();
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as(what + " within " + SLACK).isLessThan(deadline);
            Thread.sleep(10);
        }
    }
}
