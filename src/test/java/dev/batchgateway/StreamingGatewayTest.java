package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.worker.FakeVllm;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.jetty.JettyWebServer;
import org.springframework.boot.jetty.JettyWebServerFactory;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code POST /complete} with {@code "stream": true} against a fake vLLM that streams the chunks of a batch's prompts
 * interleaved, with each prompt's running counts: one upstream call per batch, each caller its own text as it comes.
 */
@GatewayApplicationTest(properties = {"gateway.worker.type=vllm", "gateway.worker.model=" + StreamingGatewayTest.MODEL,
        "gateway.batch.size=8", "gateway.batch.max-wait=500ms", "gateway.max-prompt-chars=200000"})
@Import(StreamingGatewayTest.SmallSocketBuffers.class)
class StreamingGatewayTest {

    /**
     * Small kernel send buffers on the gateway's connections, so that a client that reads nothing fills them within a
     * test's worth of text (loopback's default grows to megabytes) and the gateway's own per-caller buffer is what fills.
     */
    @TestConfiguration
    static class SmallSocketBuffers {
        @Bean
        WebServerFactoryCustomizer<JettyWebServerFactory> smallSendBuffers() {
            return factory -> factory.addServerCustomizers(server -> {
                for (var connector : server.getConnectors()) {
                    if (connector instanceof ServerConnector network) {
                        network.setAcceptedSendBufferSize(8192);
                    }
                }
            });
        }
    }

    static final String MODEL = "Qwen/Qwen2.5-1.5B-Instruct";
    private static final long SLACK_SECONDS = 30;
    static final FakeVllm vllm = new FakeVllm(MODEL);

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", vllm::url);
    }

    @AfterAll
    static void stopVllm() {
        vllm.close();
    }

    @LocalServerPort
    int port;

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();
    private final HttpClient http = HttpClient.newHttpClient();
    private final long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);

    @BeforeEach
    void forgetEarlierCalls() {
        vllm.server().resetRequests();
    }

    @AfterEach
    void calmTheFake() {
        vllm.streamMillis = 0;
        vllm.answerMillis = 0;
    }

    @Test
    void eachAnswerBeingWrittenHoldsAnOutputBufferOfEightKilobytesNotJettysThirtyTwo(
            @Autowired WebServerApplicationContext context) {
        // one per stream being written, in direct memory: 10,000 streams at 32 KB outgrew the JVM's cap (issue 32)
        Server server = ((JettyWebServer) context.getWebServer()).getServer();
        var api = Arrays.stream(server.getConnectors()).map(ServerConnector.class::cast)
                .filter(connector -> connector.getLocalPort() == port).findFirst().orElseThrow();

        assertThat(api.getConnectionFactory(HttpConnectionFactory.class).getHttpConfiguration().getOutputBufferSize())
                .isEqualTo(8 * 1024);
    }

    @Test
    void eightStreamingCallersShareOneUpstreamCallAndEachGetsOnlyItsOwnTextInOrder() throws Exception {
        // Given eight prompts of different lengths, so their chunks interleave differently
        List<String> prompts = new ArrayList<>();
        for (int i = 1; i <= 8; i++) {
            prompts.add("caller" + i + " " + "word ".repeat(i).strip());
        }

        // When they stream at once
        List<CompletableFuture<Stream>> streams = prompts.stream().map(prompt -> stream(prompt, 8)).toList();
        List<Stream> answers = new ArrayList<>();
        for (var stream : streams) {
            answers.add(stream.get(SLACK_SECONDS, TimeUnit.SECONDS));
        }

        // Then the worker got one streaming call with the eight prompts
        assertThat(vllm.calls()).singleElement().satisfies(call -> assertThat(call).containsExactlyInAnyOrderElementsOf(prompts));
        JsonNode call = json.readTree(vllm.server().getAllServeEvents().getFirst().getRequest().getBodyAsString());
        assertThat(call.get("stream").asBoolean()).isTrue();
        assertThat(call.at("/stream_options/continuous_usage_stats").asBoolean()).isTrue();

        // And each caller got its own text in pieces, in order, then one done event with the worker's exact counts
        for (int i = 0; i < 8; i++) {
            String prompt = prompts.get(i);
            Stream answer = answers.get(i);
            assertThat(answer.status).isEqualTo(200);
            assertThat(answer.contentType).startsWith("text/event-stream");
            assertThat(answer.cacheControl).isEqualTo("no-cache");
            assertThat(answer.deltas).hasSizeGreaterThan(1).allSatisfy(delta -> assertThat(delta).isNotEmpty());
            assertThat(String.join("", answer.deltas)).isEqualTo(prompt.toUpperCase());
            assertThat(answer.last.get("done").asBoolean()).isTrue();
            assertThat(answer.last.get("prompt_tokens").asInt()).isEqualTo(FakeVllm.promptTokens(prompt));
            assertThat(answer.last.get("completion_tokens").asInt()).isEqualTo(FakeVllm.completionTokens(prompt, 8));
            assertThat(answer.last.get("tokens").asInt())
                    .isEqualTo(FakeVllm.promptTokens(prompt) + FakeVllm.completionTokens(prompt, 8));
            assertThat(answer.last.get("finish_reason").asString()).isIn("stop", "length");
        }

        // And the same request without stream answers the same text and counts
        var whole = json.readTree(gateway.complete(Map.of("prompt", prompts.get(3), "user_id", user, "max_tokens", 8)).body());
        assertThat(whole.get("completion").asString()).isEqualTo(String.join("", answers.get(3).deltas));
        assertThat(whole.get("tokens").asInt()).isEqualTo(answers.get(3).last.get("tokens").asInt());

        // And each streamed request wrote one usage row with those counts, as served
        UsageRows.await(jdbc, user, 9);
        for (Stream answer : answers) {
            var row = jdbc.sql("SELECT prompt_tokens, completion_tokens, outcome FROM token_usage WHERE request_id = ?::uuid")
                    .param(answer.last.get("request_id").asString())
                    .query((rs, n) -> List.of(rs.getInt(1), rs.getInt(2), rs.getString(3))).single();
            assertThat(row).containsExactly(answer.last.get("prompt_tokens").asInt(),
                    answer.last.get("completion_tokens").asInt(), "served");
        }
    }

    @Test
    void aCallerThatLeavesAfterItsFirstPieceDoesNotDisturbTheOthersAndIsBilledWhatTheWorkerGenerated() throws Exception {
        // Given a worker whose stream takes a while, and eight streaming callers of one batch, one of which leaves
        vllm.streamMillis = 1500;
        String leaver = "leaver " + "goes away soon ".repeat(20).strip();
        try (var socket = new Socket("localhost", port)) {
            String body = json.writeValueAsString(Map.of("prompt", leaver, "max_tokens", 64, "stream", true));
            socket.getOutputStream().write(("POST /complete HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Authorization: " + gateway.bearer(user) + "\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
            List<CompletableFuture<Stream>> stayers = new ArrayList<>();
            for (int i = 1; i <= 7; i++) {
                stayers.add(stream("stayer" + i + " " + "keeps reading ".repeat(20).strip(), 64));
            }

            // When the leaver closes its connection right after its first piece
            var lines = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            String line = lines.readLine();
            while (line != null && !line.startsWith("data: ")) {
                line = lines.readLine();
            }
            assertThat(line).startsWith("data: {\"delta\":");
            socket.setSoLinger(true, 0); // a reset, as a client that goes away does
            socket.close();

            // Then the seven others get their whole text and their done event
            for (var stayer : stayers) {
                Stream answer = stayer.get(SLACK_SECONDS, TimeUnit.SECONDS);
                assertThat(answer.last.get("done").asBoolean()).as(answer.last.toString()).isTrue();
                assertThat(String.join("", answer.deltas)).startsWith("STAYER");
            }
        }

        // And the leaver's row holds the worker's whole count for its prompt, as client_gone
        UsageRows.await(jdbc, user, 8);
        var row = jdbc.sql("SELECT prompt_tokens, completion_tokens, outcome FROM token_usage WHERE user_id = ? AND outcome <> 'served'")
                .param(user)
                .query((rs, n) -> List.of(rs.getInt(1), rs.getInt(2), rs.getString(3))).single();
        assertThat(row).containsExactly(FakeVllm.promptTokens(leaver), FakeVllm.completionTokens(leaver, 64), "client_gone");
    }

    @Test
    void aClientThatDoesNotReadHoldsUpNobodyAndIsCutOffOnceItFallsTooFarBehind() throws Exception {
        // Given a client that asks for a long stream and then reads nothing, with a small receive buffer
        String endless = "z".repeat(150_000);
        try (var socket = new Socket()) {
            socket.setReceiveBufferSize(4096);
            socket.connect(new InetSocketAddress("localhost", port));
            String body = json.writeValueAsString(Map.of("prompt", endless, "max_tokens", 8, "stream", true));
            socket.getOutputStream().write(("POST /complete HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Authorization: " + gateway.bearer(user) + "\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));

            // When seven batch-mates stream beside it
            List<CompletableFuture<Stream>> mates = new ArrayList<>();
            for (int i = 1; i <= 7; i++) {
                mates.add(stream("mate" + i + " reads at once", 8));
            }

            // Then every batch-mate gets its whole stream while the slow client still has not read a byte
            for (var mate : mates) {
                Stream answer = mate.get(SLACK_SECONDS, TimeUnit.SECONDS);
                assertThat(answer.last.get("done").asBoolean()).as(answer.last.toString()).isTrue();
            }

            // And when the slow client reads at last, its stream ends with the cut-off event, not with its whole text
            var lines = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            String last = null;
            int deltas = 0;
            for (String line = lines.readLine(); line != null && !line.equals("0"); line = lines.readLine()) {
                if (line.startsWith("data: ")) {
                    last = line;
                    deltas += line.startsWith("data: {\"delta\"") ? 1 : 0;
                }
            }
            assertThat(last).contains("\"status\":502").contains("read too slowly");
            assertThat(deltas).isLessThan(endless.length() / FakeVllm.PIECE);
        }

        // And it is billed what the worker generated for it, as a client that has gone
        UsageRows.await(jdbc, user, 8);
        assertThat(jdbc.sql("SELECT outcome FROM token_usage WHERE user_id = ? AND prompt_tokens = 1").param(user)
                .query(String.class).single()).isEqualTo("client_gone");
    }

    @Test
    void aRequestWhoseDeadlinePassesAfterDispatchGets504AndADeadlineRow() throws Exception {
        // Given a worker that takes three seconds to answer
        vllm.answerMillis = 3000;

        // When a request that allows itself 1.5 s is sent to it (it waits up to max-wait for company, then goes)
        var request = HttpRequest.newBuilder(gateway.uri("/complete"))
                .header("Content-Type", "application/json")
                .header("Authorization", gateway.bearer(user))
                .header("Request-Timeout", "1.5")
                .POST(HttpRequest.BodyPublishers.ofString(json.writeValueAsString(Map.of(
                        "prompt", "too slow for me", "max_tokens", 8))))
                .build();
        var answer = http.send(request, HttpResponse.BodyHandlers.ofString());

        // Then it gets 504, and once the worker answers its tokens are billed with what became of it
        assertThat(answer.statusCode()).isEqualTo(504);
        UsageRows.await(jdbc, user, 1);
        var row = jdbc.sql("SELECT prompt_tokens, completion_tokens, outcome FROM token_usage WHERE user_id = ?")
                .param(user)
                .query((rs, n) -> List.of(rs.getInt(1), rs.getInt(2), rs.getString(3))).single();
        assertThat(row).containsExactly(4, 3, "deadline");
        var usage = json.readTree(gateway.get("/usage/" + user).body());
        assertThat(usage.get("tokens").asInt()).as(usage.toString()).isEqualTo(7);
        assertThat(usage.at("/by_outcome/deadline/tokens").asInt()).isEqualTo(7);
        assertThat(usage.at("/by_outcome/served/requests").asInt()).isZero();
    }

    @Test
    void aWorkerFailureMidStreamEndsEveryCallersStreamWithAnErrorEventAndBillsWhatWasCounted() throws Exception {
        // Given a batch of four streaming callers, one of whose prompts makes the worker's generation fail mid-stream
        List<CompletableFuture<Stream>> streams = new ArrayList<>();
        for (int i = 1; i <= 3; i++) {
            streams.add(stream("fine" + i + " prompt of some length", 8));
        }
        streams.add(stream("bad " + FakeVllm.GENERATION_ERROR, 8));
        List<CompletableFuture<Stream>> more = new ArrayList<>(streams);
        for (int i = 4; i <= 7; i++) {
            more.add(stream("filler" + i + " to fill the batch", 8));
        }

        // Then every caller of the batch got its first pieces, then one error event, and its stream ended
        for (var stream : more) {
            Stream answer = stream.get(SLACK_SECONDS, TimeUnit.SECONDS);
            assertThat(answer.status).isEqualTo(200);
            assertThat(answer.deltas).isNotEmpty();
            assertThat(answer.last.at("/error/status").asInt()).as(answer.last.toString()).isEqualTo(502);
            assertThat(answer.last.at("/error/detail").asString()).contains("The generation failed");
        }

        // And each is billed what the worker had counted for it when the stream broke
        UsageRows.await(jdbc, user, 8);
        assertThat(jdbc.sql("SELECT DISTINCT outcome FROM token_usage WHERE user_id = ?").param(user).query(String.class).list())
                .containsExactly("stream_failed");
    }

    @Test
    void aStreamThatFailsBeforeItsFirstEventIsAnOrdinaryHttpError() throws Exception {
        // When a streamed request names a model nobody serves, or is over the prompt limit of the worker
        var unknown = http.send(HttpRequest.newBuilder(gateway.uri("/complete"))
                .header("Content-Type", "application/json")
                .header("Authorization", gateway.bearer(user))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"hi\", \"model\": \"nope\", \"stream\": true}"))
                .build(), HttpResponse.BodyHandlers.ofString());
        int before = vllm.maxModelLen;
        vllm.maxModelLen = 10;
        try {
            var refused = stream("far too many words for this tiny model to take at once", 8).get(SLACK_SECONDS, TimeUnit.SECONDS);

            // Then both are problem+json answers, not event streams
            assertThat(unknown.statusCode()).isEqualTo(400);
            assertThat(unknown.headers().firstValue("Content-Type")).hasValue("application/problem+json");
            assertThat(refused.status).isEqualTo(400);
            assertThat(refused.contentType).isEqualTo("application/problem+json");
        } finally {
            vllm.maxModelLen = before;
        }
    }

    /** What a streaming caller saw: the status, its deltas in order, and the last event (done or error). */
    record Stream(int status, String contentType, String cacheControl, List<String> deltas, JsonNode last) {}

    private CompletableFuture<Stream> stream(String prompt, int maxTokens) {
        return http.sendAsync(post(prompt, maxTokens, true), HttpResponse.BodyHandlers.ofLines()).thenApply(response -> {
            List<String> deltas = new ArrayList<>();
            JsonNode[] last = {null};
            response.body().forEach(line -> {
                if (line.startsWith("data: ")) {
                    JsonNode event = json.readTree(line.substring("data: ".length()));
                    if (event.has("delta")) {
                        assertThat(last[0]).as("no event after the last").isNull();
                        deltas.add(event.get("delta").asString());
                    } else {
                        last[0] = event;
                    }
                } else if (!line.isEmpty() && response.statusCode() == 200) {
                    throw new AssertionError("not an event line: " + line);
                }
            });
            return new Stream(response.statusCode(), response.headers().firstValue("Content-Type").orElse(""),
                    response.headers().firstValue("Cache-Control").orElse(""), deltas, last[0]);
        });
    }

    private HttpRequest post(String prompt, int maxTokens, boolean stream) {
        return HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/complete"))
                .header("Content-Type", "application/json")
                .header("Authorization", gateway.bearer(user))
                .timeout(Duration.ofSeconds(SLACK_SECONDS))
                .POST(HttpRequest.BodyPublishers.ofString(json.writeValueAsString(Map.of(
                        "prompt", prompt, "max_tokens", maxTokens, "stream", stream))))
                .build();
    }
}
