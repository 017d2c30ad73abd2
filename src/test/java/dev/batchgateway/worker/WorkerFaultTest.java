package dev.batchgateway.worker;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.okJson;
import static com.github.tomakehurst.wiremock.client.WireMock.post;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.github.tomakehurst.wiremock.http.Fault;
import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The worker fault table, row by row, against real local servers: what each misbehaviour of a worker becomes. The web
 * layer maps Unavailable to 503 + Retry-After, TimedOut to 504 and BadAnswer to 502 (CompletionControllerTest).
 */
class WorkerFaultTest {

    private static final Batch THREE = new Batch(7, new GenerationParameters(16), List.of("a", "b", "c"));
    private final WireMockServer server = new WireMockServer(WireMockConfiguration.options().dynamicPort());

    @AfterEach
    void stop() {
        server.stop();
    }

    private static OpenAiWorker vllm(String url, Duration timeout) {
        return new OpenAiWorker(new WorkerEndpoint(url, Duration.ofSeconds(2), timeout), "m");
    }

    private OpenAiWorker vllmAnswering(com.github.tomakehurst.wiremock.client.ResponseDefinitionBuilder answer) {
        server.start();
        server.stubFor(post("/v1/completions").willReturn(answer));
        return vllm(server.baseUrl(), Duration.ofSeconds(20));
    }

    @Test
    void aRefusedConnectionIsUnavailable() throws IOException {
        // Given a port nobody listens on
        int port;
        try (var socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort();
        }

        // When a batch is sent there, then the worker is unavailable
        try (var worker = vllm("http://127.0.0.1:" + port, Duration.ofSeconds(20))) {
            assertThatThrownBy(() -> worker.complete(THREE)).isInstanceOf(WorkerException.Unavailable.class);
        }
    }

    @Test
    void anUnknownHostIsUnavailable() {
        try (var worker = vllm("http://no-such-worker.invalid:8000", Duration.ofSeconds(20))) {
            assertThatThrownBy(() -> worker.complete(THREE)).isInstanceOf(WorkerException.Unavailable.class);
        }
    }

    @Test
    void aWorkerThatDoesNotAnswerWithinTheTimeoutTimesOutAndItsConnectionIsClosed() throws Exception {
        // Given a worker that never answers, and a 1 s timeout
        try (var hanging = new HangingServer(); var worker = vllm(hanging.url(), Duration.ofSeconds(1))) {
            // When a batch is sent
            long started = System.nanoTime();
            assertThatThrownBy(() -> worker.complete(THREE)).isInstanceOf(WorkerException.TimedOut.class);
            Duration took = Duration.ofNanos(System.nanoTime() - started);

            // Then it timed out after about a second, and the abandoned call's connection was closed
            assertThat(took).isGreaterThanOrEqualTo(Duration.ofMillis(900)).isLessThan(Duration.ofSeconds(6));
            assertThat(hanging.closedByCaller.await(10, TimeUnit.SECONDS)).as("connection closed by the gateway").isTrue();
        }
    }

    @Test
    void anInterruptedCallIsAbandonedAndItsConnectionClosed() throws Exception {
        // Given a call to a worker that never answers, with a long timeout
        try (var hanging = new HangingServer(); var worker = vllm(hanging.url(), Duration.ofMinutes(5))) {
            var failure = new CompletableFuture<Throwable>();
            Thread caller = Thread.ofVirtual().start(() -> {
                try {
                    worker.complete(THREE);
                    failure.complete(null);
                } catch (Throwable e) {
                    failure.complete(e);
                }
            });
            assertThat(hanging.posted.await(10, TimeUnit.SECONDS)).isTrue();

            // When the scheduler's watchdog interrupts it
            caller.interrupt();

            // Then the call ends as timed out, and its connection is closed
            assertThat(failure.get(10, TimeUnit.SECONDS)).isInstanceOf(WorkerException.TimedOut.class);
            assertThat(hanging.closedByCaller.await(10, TimeUnit.SECONDS)).as("connection closed by the gateway").isTrue();
        }
    }

    @ParameterizedTest(name = "HTTP {0}")
    @ValueSource(ints = {500, 502, 503, 501})
    void aServerErrorIsABadAnswerThatNamesTheStatusNotTheBody(int status) {
        try (var worker = vllmAnswering(aResponse().withStatus(status).withBody("{\"error\":{\"message\":\"secret internals\"}}"))) {
            assertThatThrownBy(() -> worker.complete(THREE))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessageContaining("HTTP " + status)
                    .hasMessageNotContaining("secret");
        }
    }

    @ParameterizedTest(name = "HTTP {0}")
    @ValueSource(ints = {400, 422})
    void aRefusedPromptIsRejectedWithTheWorkersOwnMessageOnOneLineAndBounded(int status) {
        // Given a worker that refuses every prompt, with a long message over several lines
        String message = "prompt\\nrefused " + "x".repeat(1000);
        try (var worker = vllmAnswering(aResponse().withStatus(status)
                .withBody("{\"error\":{\"message\":\"" + message + "\",\"type\":\"BadRequestError\",\"param\":null,\"code\":" + status + "}}"))) {
            // When a batch of one is sent, then its caller's request is rejected with the start of that message
            assertThatThrownBy(() -> worker.complete(new Batch(8, new GenerationParameters(16), List.of("a"))))
                    .isInstanceOf(WorkerException.Rejected.class)
                    .hasMessageStartingWith("prompt refused xxx")
                    .hasMessageEndingWith("…")
                    .satisfies(e -> assertThat(e.getMessage()).hasSize(301).doesNotContain("\n"));
        }
    }

    @ParameterizedTest(name = "HTTP {0}")
    @ValueSource(ints = {401, 403})
    void aRefusedKeyIsMisconfigurationNamingTheSetting(int status) {
        try (var worker = vllmAnswering(aResponse().withStatus(status).withBody("{\"error\":\"Unauthorized\"}"))) {
            assertThatThrownBy(() -> worker.complete(THREE))
                    .isInstanceOf(WorkerException.Misconfigured.class)
                    .hasMessage("worker 1 refused the gateway's credentials (HTTP " + status
                            + "): check GATEWAY_WORKER_API_KEY");
        }
    }

    @Test
    void anUnservedModelIsMisconfigurationNamingModelAndServer() {
        try (var worker = vllmAnswering(aResponse().withStatus(404).withBody(
                "{\"error\":{\"message\":\"The model `m` does not exist.\",\"type\":\"NotFoundError\",\"param\":\"model\",\"code\":404}}"))) {
            assertThatThrownBy(() -> worker.complete(THREE))
                    .isInstanceOf(WorkerException.Misconfigured.class)
                    .hasMessage("model m is not served by worker 1: HTTP 404 The model `m` does not exist.");
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
            "not json at all",
            "",
            "[]",
            "{}",
            "{\"choices\": {}}",
            // wrong number of choices
            "{\"choices\": [{\"index\":0,\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":1,\"text\":\"y\",\"prompt_token_ids\":[1],\"token_ids\":[1]}]}",
            "{\"choices\": [{\"index\":0,\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":1,\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":2,\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":3,\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]}]}",
            // duplicate index
            "{\"choices\": [{\"index\":0,\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":0,\"text\":\"y\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":2,\"text\":\"z\",\"prompt_token_ids\":[1],\"token_ids\":[1]}]}",
            // index out of range
            "{\"choices\": [{\"index\":0,\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":1,\"text\":\"y\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":3,\"text\":\"z\",\"prompt_token_ids\":[1],\"token_ids\":[1]}]}",
            "{\"choices\": [{\"index\":-1,\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":1,\"text\":\"y\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":2,\"text\":\"z\",\"prompt_token_ids\":[1],\"token_ids\":[1]}]}",
            // a choice without index, without text
            "{\"choices\": [{\"text\":\"x\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":1,\"text\":\"y\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":2,\"text\":\"z\",\"prompt_token_ids\":[1],\"token_ids\":[1]}]}",
            "{\"choices\": [{\"index\":0,\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":1,\"text\":\"y\",\"prompt_token_ids\":[1],\"token_ids\":[1]},"
                    + "{\"index\":2,\"text\":\"z\",\"prompt_token_ids\":[1],\"token_ids\":[1]}]}",
    })
    void anAnswerThatIsNotAValidAnswerForTheBatchIsABadAnswer(String body) {
        try (var worker = vllmAnswering(aResponse().withStatus(200).withHeader("Content-Type", "application/json").withBody(body))) {
            assertThatThrownBy(() -> worker.complete(THREE)).isInstanceOf(WorkerException.BadAnswer.class);
        }
    }

    @Test
    void aSinglePromptAnswerWithoutUsageIsABadAnswer() {
        // Given a server without token ids (so: one call per prompt) whose answers lack usage
        try (var worker = vllmAnswering(okJson("{\"choices\":[{\"index\":0,\"text\":\"x\",\"finish_reason\":\"stop\"}]}"))) {
            // When a batch of one is completed, then it cannot be billed: a bad answer
            assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(4), List.of("a"))))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessageContaining("usage");
        }
    }

    @ParameterizedTest
    @EnumSource(Fault.class)
    void aConnectionDroppedMidAnswerIsABadAnswer(Fault fault) {
        try (var worker = vllmAnswering(aResponse().withFault(fault))) {
            assertThatThrownBy(() -> worker.complete(THREE)).isInstanceOf(WorkerException.BadAnswer.class);
        }
    }

    @Test
    void aBodyCutShortOfItsContentLengthIsABadAnswer() throws Exception {
        // Given a worker that promises 1000 bytes, sends part of a JSON answer and closes the connection
        try (var socket = new ServerSocket(0, 5, InetAddress.getLoopbackAddress())) {
            Thread.ofVirtual().start(() -> {
                try (Socket connection = socket.accept(); OutputStream out = connection.getOutputStream()) {
                    connection.getInputStream().read(new byte[8192]);
                    out.write(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                            + "{\"choices\":[{\"index\":0,\"text\":\"hel").getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                } catch (IOException ignored) {
                    // the test fails on the gateway's side if this server could not play its part
                }
            });
            try (var worker = vllm("http://127.0.0.1:" + socket.getLocalPort(), Duration.ofSeconds(20))) {
                assertThatThrownBy(() -> worker.complete(THREE)).isInstanceOf(WorkerException.BadAnswer.class);
            }
        }
    }

    @Test
    void aSlowAnswerWithinTheTimeoutIsAnAnswer() {
        // Given a worker that takes 1.5 s to answer, with a 20 s timeout
        try (var worker = vllmAnswering(okJson("""
                {"choices":[{"index":0,"text":"x","finish_reason":"stop","prompt_token_ids":[1],"token_ids":[2]},
                            {"index":1,"text":"y","finish_reason":"stop","prompt_token_ids":[1],"token_ids":[2]},
                            {"index":2,"text":"z","finish_reason":"stop","prompt_token_ids":[1],"token_ids":[2]}]}""")
                .withFixedDelay(1500))) {
            // When a batch is sent, then every prompt is answered
            assertThat(worker.complete(THREE)).hasSize(3).allMatch(WorkerOutcome.Generated.class::isInstance);
        }
    }

    @Test
    void ollamaFaultsMapTheSameWay() throws Exception {
        // Given an Ollama that never answers, one that refuses, and one that answers nonsense
        try (var hanging = new HangingServer();
                var slow = new OllamaWorker(new WorkerEndpoint(hanging.url(), Duration.ofSeconds(2), Duration.ofSeconds(1)), "m")) {
            assertThatThrownBy(() -> slow.complete(THREE)).isInstanceOf(WorkerException.TimedOut.class);
        }
        int port;
        try (var socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort();
        }
        try (var refused = new OllamaWorker(new WorkerEndpoint("http://127.0.0.1:" + port, Duration.ofSeconds(2), Duration.ofSeconds(5)), "m")) {
            assertThatThrownBy(() -> refused.complete(THREE)).isInstanceOf(WorkerException.Unavailable.class);
        }
        server.start();
        server.stubFor(post("/api/generate").willReturn(okJson("{\"response\": 42}")));
        try (var nonsense = new OllamaWorker(new WorkerEndpoint(server.baseUrl(), Duration.ofSeconds(2), Duration.ofSeconds(5)), "m")) {
            assertThatThrownBy(() -> nonsense.complete(THREE)).isInstanceOf(WorkerException.BadAnswer.class);
        }
    }
}
