package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.regex.Pattern;
import org.eclipse.jetty.ee11.servlet.ServletContextHandler;
import org.eclipse.jetty.ee11.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The probe on a real Jetty: how long a request has been at the gateway when it is queued. */
class ConnectionProbeTest {

    private static final byte[] HEADERS = ("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: 2\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
    private static final byte[] BODY = "{}".getBytes(StandardCharsets.US_ASCII);

    private Server jetty;
    private int port;

    /** Answers each POST, once its body is read, with the probe's wait in milliseconds. */
    @BeforeEach
    void startJetty() throws Exception {
        jetty = new Server(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        var context = new ServletContextHandler();
        context.addServlet(new ServletHolder(new HttpServlet() {
            @Override
            protected void doPost(HttpServletRequest request, HttpServletResponse response) throws IOException {
                request.getInputStream().readAllBytes();
                var waited = ConnectionProbe.presence(request).waitedBeforeQueue();
                byte[] body = Long.toString(waited.toMillis()).getBytes(StandardCharsets.US_ASCII);
                response.setContentLength(body.length);
                response.getOutputStream().write(body);
            }
        }), "/");
        jetty.setHandler(context);
        jetty.start();
        port = ((ServerConnector) jetty.getConnectors()[0]).getLocalPort();
    }

    @AfterEach
    void stopJetty() throws Exception {
        jetty.stop();
    }

    @Test
    void aRequestWhoseBodyCameLateHasWaitedSinceItsFirstByte() throws Exception {
        try (var client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            // When a client sends its headers, and its body a second later
            OutputStream out = client.getOutputStream();
            out.write(HEADERS);
            out.flush();
            Thread.sleep(1000);
            out.write(BODY);
            out.flush();

            // Then, read, the request has been at the gateway about that second: since its headers, not since its body
            // (half a second of slack for a loaded machine, where Jetty may begin to read the headers late)
            assertThat(nextAnswer(client.getInputStream())).isBetween(Duration.ofMillis(500), Duration.ofSeconds(30));
        }
    }

    @Test
    void aRequestOnAKeptAliveConnectionHasWaitedSinceItsOwnFirstByteNotTheConnections() throws Exception {
        try (var client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            // When a client sends a whole request, and a second one on the same connection 1.5 s after the first's answer
            OutputStream out = client.getOutputStream();
            out.write(HEADERS);
            out.write(BODY);
            Duration first = nextAnswer(client.getInputStream());
            Thread.sleep(1500);
            out.write(HEADERS);
            out.write(BODY);

            // Then each has waited only for its own reading, not since the connection opened (a second of slack)
            assertThat(first).isLessThan(Duration.ofSeconds(1));
            assertThat(nextAnswer(client.getInputStream())).isLessThan(Duration.ofSeconds(1));
        }
    }

    /** The probe's wait the next answer on the connection reports, read by its Content-Length. */
    private static Duration nextAnswer(InputStream answers) throws IOException {
        var head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int next = answers.read();
            assertThat(next).as("the connection ended before the answer's headers did: " + head).isNotNegative();
            head.append((char) next);
        }
        assertThat(head.toString()).startsWith("HTTP/1.1 200");
        var length = Pattern.compile("(?i)content-length: *(\\d+)").matcher(head);
        assertThat(length.find()).as(head.toString()).isTrue();
        String millis = new String(answers.readNBytes(Integer.parseInt(length.group(1))), StandardCharsets.US_ASCII);
        return Duration.ofMillis(Long.parseLong(millis));
    }
}
