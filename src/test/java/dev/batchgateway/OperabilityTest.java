package dev.batchgateway;

import static dev.batchgateway.LoadSheddingTest.await;
import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.Scheduler;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

/** The whole gateway over real HTTP, with batches that wait half a second for company: clients that leave or misbehave. */
@GatewayApplicationTest(properties = {"gateway.worker.type=simulated", "gateway.batch.size=8", "gateway.batch.max-wait=500ms"})
@Import(OperabilityTest.Worker.class)
class OperabilityTest {

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

    @Test
    void aClientThatLeavesBeforeItsBatchIsSentNeverReachesTheWorker() throws Exception {
        // Given a client whose request is queued, waiting up to 500 ms for its batch
        String gone = "gone " + UUID.randomUUID();
        try (var client = new Socket("localhost", port)) {
            client.getOutputStream().write(rawPost(gone, "Authorization: " + gateway.bearer(9) + "\r\n")
                    .getBytes(StandardCharsets.UTF_8));
            client.getOutputStream().flush();
            await(() -> scheduler.queued() >= 1);
            // When it gives up after 50 ms and closes the connection (the client's patience, not a synchronisation)
            Thread.sleep(50);
        }

        // And a client that stays posts the same kind of request (same batch, or the next one)
        String stays = "stays " + UUID.randomUUID();
        HttpResponse<String> answer = post(stays).get(SLACK_SECONDS, TimeUnit.SECONDS);

        // Then the staying client is served, and the worker never saw the prompt of the one that left
        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
        assertThat(HoldingWorker.prompts()).contains(stays).doesNotContain(gone);
        assertThat(scheduler.queued()).isZero();
        await(() -> scrape().contains("gateway_requests_total{endpoint=\"/complete\",status=\"499\"}"));
    }

    @Test
    void prometheusCountsExactlyTheTrafficItWasGiven() throws Exception {
        // Given the counters as they stand
        String before = metrics();

        // When three requests of two words each are served and one is refused
        for (int i = 0; i < 3; i++) {
            assertThat(post("metrics " + i).get(SLACK_SECONDS, TimeUnit.SECONDS).statusCode()).isEqualTo(200);
        }
        assertThat(send(HttpRequest.newBuilder(uri("/complete")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": 1}"))).statusCode()).isEqualTo(400);
        String after = metrics();

        // Then each counter moved by exactly that traffic (the simulated worker counts a word as a token)
        assertThat(increase(before, after, "gateway_requests_total{endpoint=\"/complete\",status=\"200\"}")).isEqualTo(3);
        assertThat(increase(before, after, "gateway_requests_total{endpoint=\"/complete\",status=\"400\"}")).isEqualTo(1);
        assertThat(increase(before, after, "gateway_tokens_total{kind=\"prompt\",model=\"simulated\"}")).isEqualTo(6);
        assertThat(increase(before, after, "gateway_tokens_total{kind=\"completion\",model=\"simulated\"}")).isEqualTo(6);
        assertThat(increase(before, after, "gateway_request_duration_seconds_count{endpoint=\"/complete\"}")).isEqualTo(4);
        assertThat(increase(before, after, "gateway_request_duration_seconds_bucket{endpoint=\"/complete\",le=\"+Inf\"}"))
                .isEqualTo(4);
        assertThat(increase(before, after, "gateway_batch_size_requests_sum")).isEqualTo(3);
        assertThat(increase(before, after, "gateway_queue_time_seconds_count")).isEqualTo(3);
        assertThat(increase(before, after, "gateway_lane_queue_time_seconds_count{model=\"simulated\",tier=\"default\"}"))
                .isEqualTo(3);
        assertThat(increase(before, after, "gateway_worker_latency_seconds_count{outcome=\"ok\",worker=\"simulated\"}"))
                .isEqualTo(increase(before, after, "gateway_batch_size_requests_count")).isBetween(1.0, 3.0);

        // And the meters of what did not happen are there, at their values
        assertThat(after).contains(
                "gateway_batches_total{trigger=\"max_wait\"}",
                "gateway_batches_total{trigger=\"full\"}",
                "gateway_batches_total{trigger=\"shutdown\"}",
                "gateway_rejections_total{reason=\"queue_full\"}",
                "gateway_rejections_total{reason=\"tokens_per_day\"}",
                "gateway_rejections_total{reason=\"key_requests_per_minute\"}",
                "gateway_queue_depth_requests 0.0",
                "gateway_lane_depth_requests{model=\"simulated\",tier=\"default\"} 0.0",
                "gateway_lane_depth_requests{model=\"simulated\",tier=\"flex\"} 0.0",
                "gateway_batches_in_flight 0.0",
                "gateway_settlement_failures_total 0.0");

        // And the limits the dashboards and alerts compare against are there, as configured
        assertThat(after).contains(
                "gateway_queue_capacity_requests 10000.0",
                "gateway_batches_in_flight_limit 32.0",
                "gateway_request_timeout_seconds 120.0",
                "gateway_batch_max_wait_seconds 0.5",
                "gateway_worker_up{server=\"simulated\",worker=\"simulated\"} 1.0");
    }

    /** How much one series grew between two scrapes; a series not yet in the first scrape counts from 0. */
    private static double increase(String before, String after, String series) {
        return value(after, series).orElseThrow(() -> new AssertionError(series + " not scraped"))
                - value(before, series).orElse(0.0);
    }

    private static java.util.Optional<Double> value(String scrape, String series) {
        return scrape.lines().filter(line -> line.startsWith(series + " "))
                .map(line -> Double.parseDouble(line.substring(series.length() + 1).strip()))
                .findFirst();
    }

    @Test
    void aChunkedBodyOverOneMebibyteIs413() throws Exception {
        // Given a body with no Content-Length, sent in chunks, that grows past 1 MiB
        var chunks = new java.util.ArrayList<byte[]>();
        chunks.add("{\"user_id\": 1, \"prompt\": \"".getBytes(StandardCharsets.UTF_8));
        for (int i = 0; i < 130; i++) {
            chunks.add("x".repeat(8192).getBytes(StandardCharsets.UTF_8));
        }
        var body = HttpRequest.BodyPublishers.ofByteArrays(chunks);
        assertThat(body.contentLength()).as("sent chunked, without Content-Length").isEqualTo(-1);

        // When it is posted
        var response = send(HttpRequest.newBuilder(uri("/complete")).header("Content-Type", "application/json").POST(body));

        // Then it is refused with 413 problem+json
        assertThat(response.statusCode()).isEqualTo(413);
        assertThat(response.headers().firstValue("Content-Type")).hasValue("application/problem+json");
    }

    @Test
    void invalidUtf8Is400() throws Exception {
        byte[] prefix = "{\"user_id\": 1, \"prompt\": \"abc".getBytes(StandardCharsets.UTF_8);
        byte[] bad = {(byte) 0xC3, (byte) 0x28, (byte) 0xFF};
        byte[] suffix = "\"}".getBytes(StandardCharsets.UTF_8);
        var bytes = new ByteArrayOutputStream();
        bytes.writeBytes(prefix);
        bytes.writeBytes(bad);
        bytes.writeBytes(suffix);

        var response = send(HttpRequest.newBuilder(uri("/complete")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(bytes.toByteArray())));

        assertThat(response.statusCode()).isEqualTo(400);
        assertThat(response.headers().firstValue("Content-Type")).hasValue("application/problem+json");
    }

    @Test
    void aCallersUuidIsEchoedAsXRequestIdAndAnythingElseIsReplaced() throws Exception {
        String mine = UUID.randomUUID().toString();
        var echoed = send(HttpRequest.newBuilder(uri("/complete")).header("Content-Type", "application/json")
                .header("X-Request-Id", mine).POST(HttpRequest.BodyPublishers.ofString("{}")));
        assertThat(echoed.statusCode()).isEqualTo(400);
        assertThat(echoed.headers().firstValue("X-Request-Id")).hasValue(mine);

        var replaced = send(HttpRequest.newBuilder(uri("/complete")).header("Content-Type", "application/json")
                .header("X-Request-Id", "not-a-uuid; DROP TABLE").POST(HttpRequest.BodyPublishers.ofString("{}")));
        assertThat(replaced.headers().firstValue("X-Request-Id")).hasValueSatisfying(id ->
                assertThat(UUID.fromString(id)).isNotNull());
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            application/json;charset="                  | 415
            application/json; charset=utf-8; x="        | 415
            application/json;charset=ISO-8859-1         | 415
            application/json;charset=no-such-charset    | 415
            application/json;;                          | 200
            application/json;charset=utf-8              | 200
            """)
    void anOddContentTypeGetsItsExactStatus(String contentType, int status) throws Exception {
        var response = send(HttpRequest.newBuilder(uri("/complete")).header("Content-Type", contentType)
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"hi\", \"user_id\": 9}")));

        assertThat(response.statusCode()).as(response.body()).isEqualTo(status);
        if (status >= 400) {
            assertThat(response.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        }
    }

    private String metrics() throws Exception {
        var scrape = send(HttpRequest.newBuilder(uri("/actuator/prometheus")).GET());
        assertThat(scrape.statusCode()).isEqualTo(200);
        return scrape.body();
    }

    private String scrape() {
        try {
            return metrics();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private CompletableFuture<HttpResponse<String>> post(String prompt) {
        return http.sendAsync(HttpRequest.newBuilder(uri("/complete"))
                        .header("Content-Type", "application/json")
                        .header("Authorization", gateway.bearer(9))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + prompt + "\", \"user_id\": 9}"))
                        .timeout(Duration.ofSeconds(SLACK_SECONDS))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
        return http.send(request.header("Authorization", gateway.bearer(9)).timeout(Duration.ofSeconds(SLACK_SECONDS)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private String rawPost(String prompt, String extraHeaders) {
        String body = "{\"prompt\": \"" + prompt + "\", \"user_id\": 9}";
        return "POST /complete HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" + extraHeaders
                + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body;
    }

    private URI uri(String path) {
        return gateway.uri(path);
    }
}
