package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.InternalServerException;
import com.openai.models.completions.CompletionCreateParams;
import dev.batchgateway.completion.Scheduler;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

/**
 * Over real HTTP, with the only batch slot held by a worker that does not answer: a full queue answers 503 at once,
 * and a queued request whose deadline passes answers 504 then, not when the worker frees up. Times are printed for
 * the record; the assertions leave wide slack for a loaded CI machine.
 */
@GatewayApplicationTest(properties = {
            "gateway.worker.type=simulated",
            "gateway.batch.size=1",
            "gateway.batch.max-wait=0ms",
            "gateway.worker.max-concurrent-batches=1",
            "gateway.queue-capacity=1",
            "gateway.request-timeout=30s",
            "gateway.worker.timeout=30s"
        })
@Import(LoadSheddingTest.Worker.class)
class LoadSheddingTest {

    private static final long SLACK_SECONDS = 10;

    @TestConfiguration
    static class Worker {
        @Bean
        static BeanPostProcessor holdingWorker() {
            return HoldingWorker.installer();
        }
    }

    @LocalServerPort
    int port;

    @Autowired
    Scheduler scheduler;

    private final HttpClient http = HttpClient.newHttpClient();

    @Autowired
    GatewayClient gateway;

    private final List<CompletableFuture<HttpResponse<String>>> pending = new ArrayList<>();

    @AfterEach
    void releaseTheWorker() {
        HoldingWorker.release();
        CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new)).orTimeout(SLACK_SECONDS, TimeUnit.SECONDS).join();
    }

    @Test
    void aFullQueueAnswers503WithRetryAfterAtOnce() throws Exception {
        // Given the worker busy with a held batch and the one queue place taken
        pending.add(post("hold full", null));
        await(() -> HoldingWorker.prompts().contains("hold full"));
        pending.add(post("waits in the queue", null));
        await(() -> scheduler.queued() == 1);

        // When one more request arrives
        long started = System.nanoTime();
        HttpResponse<String> refused = post("one too many", null).get(SLACK_SECONDS, TimeUnit.SECONDS);
        Duration took = Duration.ofNanos(System.nanoTime() - started);

        // Then it is refused with 503 and a Retry-After of at least a second, while the worker still hangs
        System.out.println("[measured] 503 on a full queue answered in " + took.toMillis() + " ms");
        assertThat(refused.statusCode()).isEqualTo(503);
        assertThat(refused.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        assertThat(refused.headers().firstValue("Retry-After")).hasValueSatisfying(
                seconds -> assertThat(Long.parseLong(seconds)).isGreaterThanOrEqualTo(1));
        assertThat(refused.body()).contains("the queue is full");
        assertThat(pending).noneMatch(CompletableFuture::isDone);
        assertThat(took).isLessThan(Duration.ofSeconds(2));
    }

    @Test
    void aFullQueueIsTheOpenAiSdksInternalServerErrorWithRetryAfter() throws Exception {
        // Given the worker busy with a held batch and the one queue place taken
        pending.add(post("hold sdk", null));
        await(() -> HoldingWorker.prompts().contains("hold sdk"));
        pending.add(post("waits for the sdk", null));
        await(() -> scheduler.queued() == 1);

        // When an OpenAI SDK client (which does not retry here) asks for one more completion
        var openAi = OpenAIOkHttpClient.builder().baseUrl("http://localhost:" + port + "/v1").apiKey(gateway.key(7))
                .maxRetries(0).build();

        // Then the SDK raises its own exception for the 503, with OpenAI's error body and the gateway's Retry-After
        assertThatThrownBy(() -> openAi.completions().create(CompletionCreateParams.builder()
                        .model("simulated").prompt("one too many").maxTokens(4).build()))
                .isInstanceOfSatisfying(InternalServerException.class, e -> {
                    assertThat(e.statusCode()).isEqualTo(503);
                    assertThat(e.headers().values("Retry-After")).singleElement()
                            .satisfies(seconds -> assertThat(Long.parseLong(seconds)).isGreaterThanOrEqualTo(1));
                    assertThat(e.getMessage()).contains("the queue is full");
                });
        assertThat(HoldingWorker.prompts()).doesNotContain("one too many");
    }

    @Test
    void aPromptArrayThatDoesNotFitTheQueueIsRefusedWholeAndNoneOfItsPromptsReachesTheWorker() throws Exception {
        // Given the worker busy with a held batch, and one queue place left
        pending.add(post("hold array", null));
        await(() -> HoldingWorker.prompts().contains("hold array"));

        // When an OpenAI request with two prompts arrives: the first takes the last place, the second finds none
        var refused = http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/v1/completions"))
                .header("Content-Type", "application/json")
                .header("Authorization", gateway.bearer(7))
                .POST(HttpRequest.BodyPublishers.ofString(
                        "{\"model\": \"simulated\", \"prompt\": [\"first of two\", \"second of two\"]}"))
                .build(), HttpResponse.BodyHandlers.ofString());

        // Then the request is refused as a whole, and its first prompt leaves the queue without reaching the worker
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
        await(() -> scheduler.queued() == 0);
        HoldingWorker.release();
        CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new)).get(SLACK_SECONDS, TimeUnit.SECONDS);
        assertThat(HoldingWorker.prompts()).doesNotContain("first of two", "second of two");
    }

    @Test
    void aQueuedRequestWhoseDeadlinePassesAnswers504ThenEvenWhileTheWorkerHangs() throws Exception {
        // Given the worker busy with a held batch
        pending.add(post("hold deadline", null));
        await(() -> HoldingWorker.prompts().contains("hold deadline"));

        // When a request that allows itself half a second waits behind it
        long started = System.nanoTime();
        HttpResponse<String> late = post("too late", "0.5").get(SLACK_SECONDS, TimeUnit.SECONDS);
        Duration took = Duration.ofNanos(System.nanoTime() - started);

        // Then it gets 504 once its deadline has passed, the worker still hanging and never seeing it
        System.out.println("[measured] 504 for a 500 ms deadline answered after " + took.toMillis() + " ms");
        assertThat(late.statusCode()).isEqualTo(504);
        assertThat(late.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        assertThat(late.body()).contains("not completed within 500 ms");
        assertThat(took).isGreaterThanOrEqualTo(Duration.ofMillis(500)).isLessThan(Duration.ofMillis(500).plusSeconds(2));
        assertThat(pending).noneMatch(CompletableFuture::isDone);
        assertThat(HoldingWorker.prompts()).doesNotContain("too late");
        assertThat(scheduler.queued()).isZero();
    }

    private CompletableFuture<HttpResponse<String>> post(String prompt, String requestTimeout) {
        var request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/complete"))
                .header("Content-Type", "application/json")
                .header("Authorization", gateway.bearer(7))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + prompt + "\", \"user_id\": 7}"))
                .timeout(Duration.ofSeconds(SLACK_SECONDS * 3));
        if (requestTimeout != null) {
            request.header("Request-Timeout", requestTimeout);
        }
        return http.sendAsync(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    static void await(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(SLACK_SECONDS);
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("condition met within %d s", SLACK_SECONDS).isLessThan(deadline);
            Thread.sleep(5);
        }
    }
}
