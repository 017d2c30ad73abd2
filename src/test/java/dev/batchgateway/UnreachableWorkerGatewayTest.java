package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.web.server.LocalManagementPort;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A pool whose only worker refuses connections: 503 with Retry-After, fast, on /complete and /v1, naming the worker as
 * "worker 1" and never its URL; readiness (the operator's view) says which URL is down.
 */
@GatewayApplicationTest(properties = {"gateway.worker.type=ollama", "gateway.worker.model=llama3.2:1b", "gateway.worker.timeout=30s",
                "gateway.worker.back-off=1h", "gateway.batch.size=1", "gateway.batch.max-wait=0ms"})
class UnreachableWorkerGatewayTest {

    static final String URL = "http://127.0.0.1:" + freePort();

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", () -> URL);
    }

    @LocalServerPort
    int port;

    @LocalManagementPort
    int managementPort;

    private final HttpClient http = HttpClient.newHttpClient();

    @Test
    void callersGet503WithRetryAfterAndReadinessIsDown() throws Exception {
        // When a caller posts, then the refused connection is a 503 with Retry-After
        var refused = post();
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
        assertThat(refused.headers().firstValue("Retry-After")).isPresent();
        assertThat(refused.body()).contains("could not connect to worker 1").doesNotContain(URL, "127.0.0.1");

        // When the next caller posts, then the worker is out of rotation, its probe fails, and the answer is a 503 at
        // once (within a second; the bound leaves slack for a loaded machine), naming why
        long started = System.nanoTime();
        var out = post();
        assertThat(out.statusCode()).isEqualTo(503);
        assertThat(out.headers().firstValue("Retry-After")).isPresent();
        assertThat(out.body()).contains("no worker can take the batch: no answer to /api/show: could not connect to worker 1")
                .doesNotContain(URL, "127.0.0.1");
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(3));

        // And the OpenAI API says the same in its own error shape, without the URL either
        var openAi = send("/v1/completions", "{\"model\":\"llama3.2:1b\",\"prompt\":\"hello\",\"max_tokens\":4}");
        assertThat(openAi.statusCode()).as(openAi.body()).isEqualTo(503);
        assertThat(openAi.headers().firstValue("Retry-After")).isPresent();
        assertThat(JsonMapper.builder().build().readTree(openAi.body()).at("/error/message").asString())
                .contains("worker 1").doesNotContain(URL, "127.0.0.1");

        // And readiness is down because of the worker
        var readiness = http.send(HttpRequest.newBuilder(uri("/actuator/health/readiness")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(readiness.statusCode()).isEqualTo(503);
        JsonNode worker = JsonMapper.builder().build().readTree(readiness.body()).at("/components/worker");
        assertThat(worker.get("status").asString()).isEqualTo("DOWN");
        assertThat(worker.get("details").properties()).singleElement().satisfies(detail -> {
            assertThat(detail.getKey()).isEqualTo(URL);
            assertThat(detail.getValue().asString()).isEqualTo("DOWN: no answer to /api/show: could not connect to worker 1");
        });
    }

    private HttpResponse<String> post() throws Exception {
        return send("/complete", "{\"prompt\":\"hello\",\"user_id\":7}");
    }

    private HttpResponse<String> send(String path, String body) throws Exception {
        var request = HttpRequest.newBuilder(uri(path))
                .header("Content-Type", "application/json")
                .header("Authorization", new GatewayClient(port).bearer(7))
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .timeout(Duration.ofSeconds(30))
                .build();
        return http.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private URI uri(String path) {
        return new GatewayClient(port, managementPort).uri(path);
    }

    private static int freePort() {
        try (var socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
