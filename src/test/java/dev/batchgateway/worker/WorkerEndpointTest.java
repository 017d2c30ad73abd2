package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.node.JsonNodeFactory;

/** The HTTP endpoint's own rules: its URL, the bounds of an error excerpt and of a count, what a 2xx is, the health timeout. */
class WorkerEndpointTest {

    @Test
    void aTrailingSlashOfTheBaseUrlIsDropped() {
        try (var endpoint = new WorkerEndpoint("http://worker:8000/", Duration.ofSeconds(1), Duration.ofSeconds(1))) {
            assertThat(endpoint.url()).isEqualTo("http://worker:8000");
        }
    }

    @Test
    void anErrorMessageIsKeptWholeUpTo300CharactersAndCutAfter() {
        String exactly = "x".repeat(300);
        assertThat(WorkerEndpoint.errorMessage(("{\"message\":\"" + exactly + "\"}").getBytes(StandardCharsets.UTF_8)))
                .isEqualTo(exactly);
        assertThat(WorkerEndpoint.errorMessage(("{\"message\":\"" + exactly + "yz\"}").getBytes(StandardCharsets.UTF_8)))
                .isEqualTo(exactly + "…");
    }

    @Test
    void zeroIsACountAndANegativeNumberIsNot() {
        assertThat(WorkerEndpoint.isCount(JsonNodeFactory.instance.numberNode(0))).isTrue();
        assertThat(WorkerEndpoint.isCount(JsonNodeFactory.instance.numberNode(-1))).isFalse();
        assertThat(WorkerEndpoint.isCount(JsonNodeFactory.instance.numberNode(1.5))).isFalse();
    }

    @Test
    void aCheckIsOkForEvery2xxStatusAndNoOther() {
        assertThat(new WorkerEndpoint.Check(200, "", null).ok()).isTrue();
        assertThat(new WorkerEndpoint.Check(299, "", null).ok()).isTrue();
        assertThat(new WorkerEndpoint.Check(199, "", null).ok()).isFalse();
        assertThat(new WorkerEndpoint.Check(300, "", null).ok()).isFalse();
        assertThat(new WorkerEndpoint.Check(0, "", "no answer").ok()).isFalse();
    }

    @Test
    void everyTwoHundredStatusIsAnAnswerForACallAndAStream() throws Exception {
        // Given a server that answers 299 with a JSON object, or two lines
        var server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/object", exchange -> {
            byte[] body = "{\"ok\":true}".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(299, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.createContext("/lines", exchange -> {
            byte[] body = "one\ntwo\n".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(299, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
        try (var endpoint = new WorkerEndpoint("http://127.0.0.1:" + server.getAddress().getPort(),
                Duration.ofSeconds(5), Duration.ofSeconds(5))) {
            // When it is called, then the answers are read
            assertThat(endpoint.post("/object", Map.of()).get("ok").asBoolean()).isTrue();
            List<String> lines = new ArrayList<>();
            endpoint.stream("/lines", Map.of(), lines::add);
            assertThat(lines).containsExactly("one", "two");
        } finally {
            server.stop(0);
        }
    }

    @Test
    void aHealthCheckGivesUpAfterAboutASecondWhateverTheCallTimeout() throws Exception {
        // Given a server that never answers, and calls allowed 30 s
        try (var hanging = new HangingServer();
                var endpoint = new WorkerEndpoint(hanging.url(), Duration.ofSeconds(5), Duration.ofSeconds(30))) {
            // When its health is checked
            long started = System.nanoTime();
            var check = endpoint.check("/health", null);

            // Then the check has no answer, well before the call timeout (a second, with slack for a busy machine)
            assertThat(check.ok()).isFalse();
            assertThat(check.failure()).isEqualTo("no answer to /health: worker 1 did not answer within 1000 ms");
            assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(10));
        }
    }
}
