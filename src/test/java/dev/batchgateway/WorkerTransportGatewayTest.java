package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.worker.RawWorker;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Collections;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.json.JsonMapper;

/**
 * The worker transport seen by callers, over HTTP: a pool of worker 1, which refuses connections, and worker 2, which
 * dies with each batch in hand or answers without end (as the test sets it). A batch is never sent twice, a batch that
 * may have been generated is 502 (never 503, which promises that nothing reached a worker), an endless answer is 502 at
 * the answer cap, and no answer names a worker's URL.
 */
@GatewayApplicationTest(properties = {"gateway.worker.type=vllm", "gateway.worker.model=m", "gateway.worker.timeout=30s",
                "gateway.worker.back-off=1h", "gateway.batch.size=1", "gateway.batch.max-wait=0ms",
                "gateway.worker.max-answer-bytes=1MB"})
class WorkerTransportGatewayTest {

    static final String REFUSING = "http://127.0.0.1:" + freePort();
    static final RawWorker raw = new RawWorker("m");

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", () -> REFUSING + "," + raw.url());
    }

    @AfterAll
    static void stopWorker() {
        raw.close();
    }

    private final JsonMapper json = JsonMapper.builder().build();

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    @Test
    void aWorkerKilledWithTheBatchInHandIs502OnBothApisGeneratedOnceBilledNeverAndUnnamedByUrl() throws Exception {
        // Given worker 2 closes or resets the connection once it has read a batch (worker 1 refuses: a batch sent there
        // first moves on to worker 2)
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        String first = "killed " + UUID.randomUUID();
        String second = "reset " + UUID.randomUUID();

        // When a caller posts to /complete
        raw.fate = RawWorker.Fate.CLOSE;
        var complete = gateway.complete(Map.of("prompt", first, "user_id", user));

        // Then it gets 502, naming worker 2 and no URL, and worker 2 got the prompt exactly once
        assertThat(complete.statusCode()).as(complete.body()).isEqualTo(502);
        assertThat(json.readTree(complete.body()).get("detail").asString())
                .isEqualTo("the worker failed: worker 2 broke off its answer to /v1/completions");
        assertThat(Collections.frequency(raw.prompts(), first)).isEqualTo(1);

        // When a caller posts to /v1/completions and the worker resets the connection instead
        raw.fate = RawWorker.Fate.RESET;
        var openAi = v1(user, second);

        // Then the same, in OpenAI's error shape
        assertThat(openAi.statusCode()).as(openAi.body()).isEqualTo(502);
        assertThat(json.readTree(openAi.body()).at("/error/message").asString())
                .isEqualTo("the worker failed: worker 2 broke off its answer to /v1/completions");
        assertThat(Collections.frequency(raw.prompts(), second)).isEqualTo(1);

        // And neither answer names a worker's URL, and neither caller was billed
        for (var answer : new HttpResponse<?>[] {complete, openAi}) {
            assertThat(answer.body().toString()).doesNotContain(REFUSING, raw.url(), "127.0.0.1");
        }
        assertThat(UsageRows.of(jdbc, user)).isZero();
    }

    @Test
    void anEndlessAnswerIs502AtTheAnswerCapOnBothApis() {
        // Given worker 2 answers every batch with a JSON text that never ends, and a cap of 1 MB
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        raw.fate = RawWorker.Fate.ENDLESS_BODY;

        // When callers post to /complete and to /v1/completions
        var complete = gateway.complete(Map.of("prompt", "endless " + UUID.randomUUID(), "user_id", user));
        var openAi = v1(user, "endless " + UUID.randomUUID());

        // Then both get 502 naming the cap, well before the worker timeout, and no URL
        String failed = "the worker failed: worker 2's answer to /v1/completions is larger than 1048576 bytes "
                + "(GATEWAY_WORKER_MAX_ANSWER_BYTES)";
        assertThat(complete.statusCode()).as(complete.body()).isEqualTo(502);
        assertThat(json.readTree(complete.body()).get("detail").asString()).isEqualTo(failed);
        assertThat(openAi.statusCode()).as(openAi.body()).isEqualTo(502);
        assertThat(json.readTree(openAi.body()).at("/error/message").asString()).isEqualTo(failed);
        for (var answer : new HttpResponse<?>[] {complete, openAi}) {
            assertThat(answer.body().toString()).doesNotContain(REFUSING, raw.url(), "127.0.0.1");
        }
    }

    private HttpResponse<String> v1(long user, String prompt) {
        return gateway.send(HttpRequest.newBuilder(gateway.uri("/v1/completions"))
                .header("Content-Type", "application/json")
                .header("Authorization", gateway.bearer(user))
                .POST(HttpRequest.BodyPublishers.ofString(json.writeValueAsString(
                        Map.of("model", "m", "prompt", prompt, "max_tokens", 4)))));
    }

    private static int freePort() {
        try (var socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
