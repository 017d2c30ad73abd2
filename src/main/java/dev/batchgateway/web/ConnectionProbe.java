package dev.batchgateway.web;

import dev.batchgateway.completion.CallerPresence;
import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import org.eclipse.jetty.ee11.servlet.ServletContextRequest;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.util.BufferUtil;

/**
 * Tells whether the client of a waiting {@code /complete} or {@code /v1/…completions} request has closed its connection,
 * and since when the request has been at the gateway.
 *
 * <p>Jetty does not notice a client leaving while a request waits: it reads from the connection only when the
 * application does (a request being handled has no read interest with the selector), so nothing tells the gateway
 * until the answer is written. This probe tries one non-blocking read of one byte on the connection: end of stream or
 * a reset means the client has gone. A byte waiting there would be a pipelined next request, which no mainstream
 * client sends; it also counts as gone, and the connection is closed (the byte was taken from Jetty).
 *
 * <p>The probe runs on the scheduler's thread; it only touches the connection while the request is unanswered, and
 * {@link #answered()} takes the same lock, so it never races the container writing the answer and reading the next
 * request.
 */
final class ConnectionProbe implements CallerPresence {

    private static final String ATTRIBUTE = ConnectionProbe.class.getName();

    private final EndPoint connection;
    /** When Jetty began to read the request ({@link System#nanoTime()}). */
    private final long arrivedAt;
    private final ByteBuffer oneByte = BufferUtil.allocate(1);
    private boolean answered;

    private ConnectionProbe(EndPoint connection, long arrivedAt) {
        this.connection = connection;
        this.arrivedAt = arrivedAt;
    }

    /** The probe of this request's connection, the same one on every call; {@code null} outside Jetty (MockMvc). */
    static ConnectionProbe of(HttpServletRequest http) {
        if (http.getAttribute(ATTRIBUTE) instanceof ConnectionProbe probe) {
            return probe;
        }
        ServletContextRequest jetty;
        try {
            jetty = ServletContextRequest.getServletContextRequest(http);
        } catch (IllegalStateException notJetty) {
            return null;
        }
        if (jetty == null) {
            return null;
        }
        var probe = new ConnectionProbe(jetty.getConnectionMetaData().getConnection().getEndPoint(), jetty.getBeginNanoTime());
        http.setAttribute(ATTRIBUTE, probe);
        return probe;
    }

    /** {@link #of} as a {@link CallerPresence}: outside Jetty the caller is assumed present. */
    static CallerPresence presence(HttpServletRequest http) {
        ConnectionProbe probe = of(http);
        return probe != null ? probe : CallerPresence.ASSUMED;
    }

    @Override
    public synchronized boolean stillWaiting() {
        if (answered) {
            return true;
        }
        if (!connection.isOpen() || connection.isInputShutdown()) {
            return false;
        }
        try {
            int read = connection.fill(oneByte);
            if (read > 0) {
                connection.close();
            }
            return read == 0;
        } catch (IOException reset) {
            return false;
        }
    }

    /** Since Jetty began to read the request: the part of its wait spent reading, parsing and checking it. */
    @Override
    public Duration waitedBeforeQueue() {
        return Duration.ofNanos(System.nanoTime() - arrivedAt);
    }

    /** Called before the answer is handed to the container; the probe no longer touches the connection. */
    synchronized void answered() {
        answered = true;
    }
}
