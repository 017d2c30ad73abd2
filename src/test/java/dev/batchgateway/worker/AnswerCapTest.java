package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.WorkerException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * GATEWAY_WORKER_MAX_ANSWER_BYTES: an answer larger than the cap, an endless one above all, ends its batch as a bad
 * answer (502) having read no more than the cap, instead of filling the heap; an answer up to the cap is read whole.
 */
class AnswerCapTest {

    private static final long CAP = 1024 * 1024;
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private static WorkerEndpoint endpoint(String url, long cap) {
        return new WorkerEndpoint("worker 3", url, null, Duration.ofSeconds(2), TIMEOUT, cap);
    }

    @Test
    void anEndlessAnswerEndsItsBatchAsABadAnswerAndIsNotReadFurtherThanTheCap() throws Exception {
        // Given a worker that answers a batch with a JSON text that never ends
        try (var raw = new RawWorker("m"); var worker = new OpenAiWorker(endpoint(raw.url(), CAP), "m")) {
            raw.fate = RawWorker.Fate.ENDLESS_BODY;

            // When a batch is sent, then it fails as a bad answer naming the worker and the setting, well before its timeout
            long started = System.nanoTime();
            assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(4), List.of("a", "b"))))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessage("worker 3's answer to /v1/completions is larger than 1048576 bytes (GATEWAY_WORKER_MAX_ANSWER_BYTES)");
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            assertThat(took).as("failed after %d ms, expected well within the 60 s timeout", took.toMillis())
                    .isLessThan(Duration.ofSeconds(30));

            // And the gateway stopped taking the answer: the worker's writes failed, after at most the cap plus what the
            // sockets' buffers hold (tens of megabytes at most on loopback)
            assertThat(raw.endlessCut.await(10, TimeUnit.SECONDS)).as("the endless answer was cut off").isTrue();
            assertThat(raw.endlessBytes.get()).isLessThan(CAP + 64L * 1024 * 1024);
        }
    }

    @Test
    void anEndlessStreamEndsAsABadAnswerToo() throws Exception {
        // Given a worker that streams server-sent events without end
        try (var raw = new RawWorker("m"); var endpoint = endpoint(raw.url(), CAP)) {
            raw.fate = RawWorker.Fate.ENDLESS_STREAM;
            AtomicInteger lines = new AtomicInteger();

            // When a streamed call is made, then it fails as a bad answer once the cap is passed, its lines handed on
            // until then
            assertThatThrownBy(() -> endpoint.stream("/v1/completions", Map.of("stream", true), line -> lines.incrementAndGet() > 0))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessage("worker 3's answer to /v1/completions is larger than 1048576 bytes (GATEWAY_WORKER_MAX_ANSWER_BYTES)");
            assertThat(lines.get()).isPositive();
            assertThat(raw.endlessCut.await(10, TimeUnit.SECONDS)).as("the endless stream was cut off").isTrue();
        }
    }

    @Test
    void anAnswerDeclaringALengthOverTheCapFailsAtOnceUnread() {
        // Given a worker that declares a terabyte and sends nothing (reading it would wait for the 60 s timeout)
        try (var raw = new RawWorker("m"); var endpoint = endpoint(raw.url(), CAP)) {
            raw.fate = RawWorker.Fate.TERABYTE_DECLARED;

            // When a call is made, then it fails at once as a bad answer
            long started = System.nanoTime();
            assertThatThrownBy(() -> endpoint.post("/v1/completions", Map.of()))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessageContaining("is larger than 1048576 bytes");
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            assertThat(took).as("failed after %d ms, expected at once (not the 60 s timeout)", took.toMillis())
                    .isLessThan(Duration.ofSeconds(20));
        }
    }

    @ParameterizedTest(name = "declared length: {0}")
    @ValueSource(booleans = {true, false})
    void anAnswerOfExactlyTheCapIsReadAndOneByteMoreIsNot(boolean declared) throws IOException {
        // Given a worker whose answer is a JSON object of exactly 100 000 bytes, with its length declared or chunked
        byte[] answer = ("{\"text\":\"" + "x".repeat(100_000 - 11) + "\"}").getBytes(StandardCharsets.UTF_8);
        assertThat(answer).hasSize(100_000);
        var server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/v1/completions", exchange -> {
            exchange.sendResponseHeaders(200, declared ? answer.length : 0);
            exchange.getResponseBody().write(answer);
            exchange.close();
        });
        server.start();
        String url = "http://127.0.0.1:" + server.getAddress().getPort();
        try (var exact = endpoint(url, answer.length); var oneShort = endpoint(url, answer.length - 1)) {
            // Then a cap of exactly its size reads it, and a cap one byte smaller refuses it
            assertThat(exact.post("/v1/completions", Map.of()).get("text").asString()).hasSize(100_000 - 11);
            assertThatThrownBy(() -> oneShort.post("/v1/completions", Map.of()))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessageContaining("is larger than " + (answer.length - 1) + " bytes");
        } finally {
            server.stop(0);
        }
    }
}
