package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The API port against slow and numerous clients, over raw sockets, on a gateway in a child JVM whose open-files limit
 * is low (1,024, as on many hosts): headers or a body that trickle in are cut off at their deadline, and a flood of
 * connections beyond {@code GATEWAY_MAX_CONNECTIONS} is closed at once rather than taking the file descriptors every
 * other request needs. Before these defences, ~1,000 slow connections made every request time out for 45 s.
 */
class ConnectionProtectionTest {

    private static final Duration HEADER_TIMEOUT = Duration.ofSeconds(3);
    private static final Duration BODY_TIMEOUT = Duration.ofSeconds(3);
    private static final int OPEN_FILES = 1024;
    private static final int MAX_CONNECTIONS = 200;
    /** More than the open-files limit leaves free: without the cap, the gateway could not accept anything more. */
    private static final int FLOOD = 1000;
    /** A loaded two-core machine is slow, not this slow. */
    private static final Duration SLACK = Duration.ofSeconds(10);
    /** How often a slow client sends its next byte. */
    private static final Duration TRICKLE = Duration.ofMillis(250);

    @TempDir
    static Path logs;
    @TempDir
    static Path journal;

    private static ChildGateway gateway;
    private static int port;
    private static String bearer;

    @BeforeAll
    static void startGateway() throws InterruptedException {
        gateway = ChildGateway.startWithOpenFilesLimit(OPEN_FILES, "protected", logs, journal,
                "--gateway.header-timeout=" + HEADER_TIMEOUT.toSeconds() + "s",
                "--gateway.body-timeout=" + BODY_TIMEOUT.toSeconds() + "s",
                "--gateway.max-connections=" + MAX_CONNECTIONS);
        port = gateway.client().uri("/").getPort();
        bearer = gateway.client().bearer(ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE));
    }

    @AfterAll
    static void stopGateway() throws InterruptedException {
        if (gateway != null) {
            gateway.close();
        }
    }

    /** The 408 is in each API's error shape: problem+json for /complete, OpenAI's error object under /v1. */
    @ParameterizedTest
    @CsvSource({"/complete, application/problem+json, \"detail\":\"the request headers did not arrive",
            "/v1/chat/completions, application/json, {\"error\":{\"message\":\"the request headers did not arrive"})
    void headersThatTrickleInAreCutOffAtTheirDeadlineWith408(String path, String contentType, String body) throws Exception {
        try (var socket = new Socket("localhost", port)) {
            // Given a client that sends its request line, then one header byte every 250 ms, never ending the headers
            long started = System.nanoTime();
            trickle(socket, "POST " + path + " HTTP/1.1\r\nHost: localhost\r\n", "X-Slow: " + "a".repeat(1000));

            // When the gateway is left to it
            String answer = readUntilClosed(socket, HEADER_TIMEOUT.plus(SLACK));

            // Then the connection was answered 408 and closed at the header deadline, not before it
            double waited = seconds(started);
            assertThat(answer).as("what the slow client read").startsWith("HTTP/1.1 408")
                    .contains("Content-Type: " + contentType + "\r\n").contains(body);
            assertThat(waited).as("waited %.1f s for the close, expected about %d s", waited, HEADER_TIMEOUT.toSeconds())
                    .isBetween(HEADER_TIMEOUT.toMillis() / 1000.0 - 0.5, (double) HEADER_TIMEOUT.plus(SLACK).toSeconds());
        }
    }

    @Test
    void slowConnectionsOpenedAtDifferentTimesAreEachCutOffAtTheirOwnDeadline() throws Exception {
        // Given two clients trickling their headers, the second connecting 1.5 s after the first
        long firstStarted = System.nanoTime();
        try (var first = new Socket("localhost", port)) {
            trickle(first, "GET /health HTTP/1.1\r\nHost: localhost\r\n", "X-Slow: " + "a".repeat(1000));
            Thread.sleep(1500); // the second client's later start, not a synchronisation
            long secondStarted = System.nanoTime();
            try (var second = new Socket("localhost", port)) {
                trickle(second, "GET /health HTTP/1.1\r\nHost: localhost\r\n", "X-Slow: " + "a".repeat(1000));

                // When the gateway is left to them
                String firstAnswer = readUntilClosed(first, HEADER_TIMEOUT.plus(SLACK));
                double firstWaited = seconds(firstStarted);
                String secondAnswer = readUntilClosed(second, HEADER_TIMEOUT.plus(SLACK));
                double secondWaited = seconds(secondStarted);

                // Then each got its 408 at its own deadline: the second not when the first did, 1.5 s early
                assertThat(firstAnswer).startsWith("HTTP/1.1 408");
                assertThat(secondAnswer).startsWith("HTTP/1.1 408");
                assertThat(firstWaited).as("the first waited %.1f s", firstWaited).isBetween(
                        HEADER_TIMEOUT.toMillis() / 1000.0 - 0.5, (double) HEADER_TIMEOUT.plus(SLACK).toSeconds());
                assertThat(secondWaited).as("the second waited %.1f s", secondWaited).isBetween(
                        HEADER_TIMEOUT.toMillis() / 1000.0 - 0.5, (double) HEADER_TIMEOUT.plus(SLACK).toSeconds());
            }
        }
    }

    @Test
    void aKeptAliveConnectionQuietBeyondTheHeaderDeadlineServesItsNextRequest() throws Exception {
        try (var socket = new Socket("localhost", port)) {
            // Given a connection whose first request was answered
            assertThat(exchange(socket, get("/health"))).startsWith("HTTP/1.1 200");

            // When it stays quiet longer than the header deadline (a request that ended arms nothing)
            Thread.sleep(HEADER_TIMEOUT.plusSeconds(1)); // the client's pause, not a synchronisation

            // Then its next request is answered on it
            assertThat(exchange(socket, get("/health"))).startsWith("HTTP/1.1 200");
        }
    }

    @ParameterizedTest
    @CsvSource({"/complete, application/problem+json, \"detail\":\"the request body did not arrive in time",
            "/v1/completions, application/json, {\"error\":{\"message\":\"the request body did not arrive in time"})
    void aBodyThatTricklesInIsCutOffAtItsDeadlineWith408(String path, String contentType, String problem) throws Exception {
        try (var socket = new Socket("localhost", port)) {
            // Given a client with a valid key whose headers come at once and whose 300-byte body one byte every 250 ms
            String body = "{\"prompt\": \"" + "slow ".repeat(56) + "\"}";
            long started = System.nanoTime();
            trickle(socket, "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Authorization: " + bearer + "\r\nContent-Length: " + body.length() + "\r\n\r\n", body);

            // When the gateway is left to it
            String answer = readUntilClosed(socket, BODY_TIMEOUT.plus(SLACK));

            // Then the request was answered 408 and its connection closed at the body's deadline
            double waited = seconds(started);
            assertThat(answer).as("what the slow client read").startsWith("HTTP/1.1 408").contains("Connection: close")
                    .contains("Content-Type: " + contentType).contains(problem);
            assertThat(waited).as("waited %.1f s for the close, expected about %d s", waited, BODY_TIMEOUT.toSeconds())
                    .isBetween(BODY_TIMEOUT.toMillis() / 1000.0 - 0.5, (double) BODY_TIMEOUT.plus(SLACK).toSeconds());
        }
    }

    @Test
    void aFloodOfConnectionsBeyondTheCapIsRefusedAndTheGatewayKeepsAnswering() throws Exception {
        // Given a client connection kept alive from before the flood, as a load balancer's pool keeps one
        try (var pooled = new Socket("localhost", port)) {
            assertThat(exchange(pooled, get("/health"))).as("/health before the flood").startsWith("HTTP/1.1 200");
            List<Socket> flood = new ArrayList<>();
            try {
                // When a thousand connections open and send nothing, more than the open-files limit leaves room for
                long started = System.nanoTime();
                for (int i = 0; i < FLOOD; i++) {
                    flood.add(new Socket("localhost", port));
                }

                // Then the gateway's health, its management port, and a completion on the kept connection still answer
                assertThat(exchange(pooled, get("/health"))).as("/health during the flood").startsWith("HTTP/1.1 200");
                assertThat(exchange(pooled, complete())).as("a completion during the flood").startsWith("HTTP/1.1 200");
                assertThat(gateway.client().get("/actuator/health/liveness").statusCode())
                        .as("liveness on the management port during the flood").isEqualTo(200);
                // and the connections beyond the cap were closed at once, long before any deadline
                int refused = awaitClosed(flood, FLOOD - MAX_CONNECTIONS);
                double waited = seconds(started);
                assertThat(refused).as("flood connections the gateway closed within %.1f s, of %d over a cap of %d",
                        waited, FLOOD, MAX_CONNECTIONS).isGreaterThanOrEqualTo(FLOOD - MAX_CONNECTIONS);
                assertThat(waited).as("seconds until the excess was seen closed").isLessThan(HEADER_TIMEOUT.toSeconds());
            } finally {
                for (Socket socket : flood) {
                    socket.close();
                }
            }
            // and new connections are served again once the flood is gone
            ChildGateway.awaitCondition("a new connection answered after the flood", SLACK, () -> {
                try (var fresh = new Socket("localhost", port)) {
                    return exchange(fresh, complete()).startsWith("HTTP/1.1 200");
                } catch (IOException refusedStill) {
                    return false;
                }
            });
            assertThat(Files.readString(logs.resolve("protected.log"))).as("the gateway's output")
                    .doesNotContain("Too many open files");
        }
    }

    private static String get(String path) {
        return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    }

    private static String complete() {
        String body = "{\"prompt\": \"the quick brown fox\"}";
        return "POST /complete HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: " + bearer
                + "\r\nContent-Length: " + body.length() + "\r\n\r\n" + body;
    }

    /** Sends {@code head} at once, then {@code tail} a byte at a time, in the background, until the socket breaks. */
    private static void trickle(Socket socket, String head, String tail) throws IOException {
        OutputStream out = socket.getOutputStream();
        out.write(head.getBytes(StandardCharsets.US_ASCII));
        out.flush();
        Thread.ofVirtual().start(() -> {
            try {
                for (byte b : tail.getBytes(StandardCharsets.US_ASCII)) {
                    Thread.sleep(TRICKLE); // the slow client's pace, not a synchronisation
                    out.write(b);
                    out.flush();
                }
            } catch (IOException | InterruptedException closed) {
                // the gateway closed the connection: what the test waits for
            }
        });
    }

    /** Everything the gateway sends until it closes the connection; fails if it is still open after {@code atMost}. */
    private static String readUntilClosed(Socket socket, Duration atMost) throws IOException {
        socket.setSoTimeout((int) atMost.toMillis());
        var read = new ByteArrayOutputStream();
        try {
            socket.getInputStream().transferTo(read);
        } catch (SocketTimeoutException stillOpen) {
            throw new AssertionError("the connection was still open after " + atMost.toSeconds() + " s; read: " + read);
        } catch (SocketException reset) {
            // closed with a reset after the answer: what was read before counts
        }
        return read.toString(StandardCharsets.US_ASCII);
    }

    /** One request and its answer on a kept-alive connection: the status line, headers and Content-Length body. */
    private static String exchange(Socket socket, String request) throws IOException {
        socket.setSoTimeout((int) SLACK.toMillis());
        socket.getOutputStream().write(request.getBytes(StandardCharsets.UTF_8));
        socket.getOutputStream().flush();
        InputStream in = socket.getInputStream();
        var head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                throw new IOException("closed after " + head);
            }
            head.append((char) b);
        }
        int length = head.toString().lines()
                .filter(line -> line.regionMatches(true, 0, "Content-Length:", 0, 15))
                .map(line -> Integer.parseInt(line.substring(15).trim()))
                .findFirst().orElse(0);
        return head + new String(in.readNBytes(length), StandardCharsets.UTF_8);
    }

    /** Waits until at least {@code expected} of the sockets are closed by the other side; how many were. */
    private static int awaitClosed(List<Socket> sockets, int expected) throws Exception {
        List<Socket> open = new ArrayList<>(sockets);
        ChildGateway.awaitCondition(() -> (sockets.size() - open.size()) + " of " + sockets.size() + " closed, expected "
                + expected, SLACK, () -> {
            open.removeIf(ConnectionProtectionTest::closedByGateway);
            return sockets.size() - open.size() >= expected;
        });
        return sockets.size() - open.size();
    }

    /** Whether the gateway has closed this connection: end of stream or a reset, seen without waiting more than 1 ms. */
    private static boolean closedByGateway(Socket socket) {
        try {
            socket.setSoTimeout(1);
            return socket.getInputStream().read() < 0;
        } catch (SocketTimeoutException open) {
            return false;
        } catch (IOException reset) {
            return true;
        }
    }

    private static double seconds(long since) {
        return (System.nanoTime() - since) / 1e9;
    }
}
