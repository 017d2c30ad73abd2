package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.WorkerException;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The race of a keep-alive connection that the server closes just as a batch is written to it (vLLM's uvicorn closes
 * idle connections after 5 s): the batch is sent once more on a fresh connection, and only once.
 */
class StaleConnectionTest {

    private static final String ANSWER = """
            {"id":"cmpl-1","object":"text_completion","model":"m","choices":[
             {"index":0,"text":"A","finish_reason":"stop","prompt_token_ids":[1],"token_ids":[2]}],
             "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}""";

    @Test
    void theJdkClientIsSetUpAsTheGatewaySetsItUp() {
        // WorkerConnections sets these at start-up; the build sets the same for the test JVM (see the pom)
        assertThat(System.getProperty(WorkerConnections.KEEP_ALIVE)).isEqualTo("4");
        assertThat(System.getProperty(WorkerConnections.RETRY_ALL_METHODS)).isEqualTo("true");
    }

    @Test
    void aBatchWrittenToAConnectionTheServerClosesIsSentAgainOnAFreshOne() throws Exception {
        // Given a server that answers the first request of each connection and closes it, unanswered, at the second
        try (var server = new ClosingServer(1);
                var worker = new OpenAiWorker(new WorkerEndpoint(server.url(), Duration.ofSeconds(2), Duration.ofSeconds(10)), "m")) {
            // When two batches are sent one after the other (the second on the kept-alive connection)
            worker.complete(new Batch(1, new GenerationParameters(4), List.of("a")));
            var second = worker.complete(new Batch(2, new GenerationParameters(4), List.of("a")));

            // Then the second is answered, through a second connection: three requests, two answered
            assertThat(second).hasSize(1);
            assertThat(server.connections.get()).isEqualTo(2);
            assertThat(server.requests.get()).isEqualTo(3);
        }
    }

    @Test
    void aBatchWhoseConnectionIsClosedWithoutAnAnswerIsSentAgainOnlyOnce() throws Exception {
        // Given a server that closes every connection at its first request, unanswered
        try (var server = new ClosingServer(0);
                var worker = new OpenAiWorker(new WorkerEndpoint(server.url(), Duration.ofSeconds(2), Duration.ofSeconds(10)), "m")) {
            // When a batch is sent, then it fails as a broken-off answer after one more try (the JDK client retries
            // whenever no byte of the answer arrived; it cannot tell a fresh connection from a reused one there)
            assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(4), List.of("a"))))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessageContaining("broke off");
            assertThat(server.requests.get()).isEqualTo(2);
            assertThat(server.connections.get()).isEqualTo(2);
        }
    }

    /** Answers the first {@code answered} requests of each connection, then closes it when the next request arrives. */
    private static final class ClosingServer implements AutoCloseable {
        final AtomicInteger connections = new AtomicInteger();
        final AtomicInteger requests = new AtomicInteger();
        private final ServerSocket socket;
        private final int answered;

        ClosingServer(int answered) throws IOException {
            this.answered = answered;
            socket = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            Thread.ofVirtual().start(() -> {
                while (!socket.isClosed()) {
                    try {
                        Socket connection = socket.accept();
                        connections.incrementAndGet();
                        Thread.ofVirtual().start(() -> serve(connection));
                    } catch (IOException closed) {
                        return;
                    }
                }
            });
        }

        String url() {
            return "http://127.0.0.1:" + socket.getLocalPort();
        }

        private void serve(Socket connection) {
            try (connection; var in = new BufferedInputStream(connection.getInputStream())) {
                OutputStream out = connection.getOutputStream();
                for (int served = 0; ; served++) {
                    if (!readRequest(in)) {
                        return;
                    }
                    requests.incrementAndGet();
                    if (served >= answered) {
                        return; // closes the connection without a byte of answer
                    }
                    byte[] body = ANSWER.getBytes(StandardCharsets.UTF_8);
                    out.write(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + body.length
                            + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                    out.write(body);
                    out.flush();
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        /** Reads one request, headers and body; false when the connection ended first. */
        private static boolean readRequest(InputStream in) throws IOException {
            StringBuilder headers = new StringBuilder();
            int c;
            while (!headers.toString().endsWith("\r\n\r\n")) {
                if ((c = in.read()) < 0) {
                    return false;
                }
                headers.append((char) c);
            }
            int length = 0;
            for (String line : headers.toString().split("\r\n")) {
                if (line.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
                    length = Integer.parseInt(line.substring(line.indexOf(':') + 1).strip());
                }
            }
            return in.readNBytes(length).length == length;
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }
}
