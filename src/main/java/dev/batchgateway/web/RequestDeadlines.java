package dev.batchgateway.web;

import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.eclipse.jetty.http.HttpVersion;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.CyclicTimeouts;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.internal.HttpConnection;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.NanoTime;
import org.eclipse.jetty.util.thread.Scheduler;
import org.springframework.http.HttpStatus;

/**
 * HTTP/1.1 connections whose requests must arrive in time: the headers within {@code GATEWAY_HEADER_TIMEOUT} of the
 * connection opening or of the request's first byte, the body within {@code GATEWAY_BODY_TIMEOUT} of the headers' end.
 * Jetty's idle timeout alone does not bound them: a client that sends a byte a second (slowloris) is never idle.
 *
 * <p>Headers late: the connection gets a 408 if part of a request came (in OpenAI's error shape when its request line
 * named {@code /v1}, else problem+json), and is closed. Body late: the request fails
 * as on Jetty's own idle timeout (a read waiting for the body fails with a {@link TimeoutException}, answered 408 with
 * {@code Connection: close}; {@link RequestBodyLimit} tells it apart), and the connection is not reused.
 *
 * <p>Jetty has no such deadlines of its own: {@code HttpConfiguration.minRequestDataRate} is not read by Jetty 12,
 * and its {@code MinimumDataRateHandler} sees the body only once a request is handled, never the headers.
 *
 * <p>The deadlines of all connections share one timer, Jetty's {@link CyclicTimeouts}: arming one sets a time, and the
 * timer wakes at the earliest and looks at every connection. A task scheduled and cancelled per deadline (four a
 * request) made the threads parsing requests queue for the scheduler's one lock, up to 2.4 s at 10,000 connections.
 */
final class RequestDeadlines extends HttpConnectionFactory {

    /** Which deadline passed; told to the metric. */
    enum Phase { HEADERS, BODY }

    private final long headerMillis;
    private final long bodyMillis;
    private final Consumer<Phase> onTimeout;
    /** The whole answer to a request whose headers came late, written straight to the connection. */
    private final byte[] lateHeaders;
    /** The same for a request to the OpenAI-compatible API, in OpenAI's error shape. */
    private final byte[] lateHeadersOpenAi;
    /** The connections open, each with its deadline or none. */
    private final Set<DeadlinedConnection> open = ConcurrentHashMap.newKeySet();
    /** Their one timer, made with the first connection on its connector's scheduler. */
    private volatile CyclicTimeouts<DeadlinedConnection> deadlines;

    /**
     * @param configuration the connector's HTTP configuration, kept as it is
     * @param onTimeout told of every connection closed for a late request (a metric)
     */
    RequestDeadlines(HttpConfiguration configuration, Duration headerTimeout, Duration bodyTimeout, Consumer<Phase> onTimeout) {
        super(configuration);
        this.headerMillis = headerTimeout.toMillis();
        this.bodyMillis = bodyTimeout.toMillis();
        this.onTimeout = onTimeout;
        String problem = "{\"type\":\"about:blank\",\"title\":\"Request Timeout\",\"status\":408,"
                + "\"detail\":\"the request headers did not arrive within " + headerMillis + " ms\"}";
        this.lateHeaders = lateAnswer("application/problem+json", problem.getBytes(StandardCharsets.US_ASCII));
        this.lateHeadersOpenAi = lateAnswer("application/json", OpenAiAdvice.bytes(new Failure(HttpStatus.REQUEST_TIMEOUT,
                "the request headers did not arrive within " + headerMillis + " ms: send them at once", null,
                "invalid_request_error", null, null)));
    }

    private static byte[] lateAnswer(String contentType, byte[] body) {
        byte[] head = ("HTTP/1.1 408 Request Timeout\r\nContent-Type: " + contentType + "\r\nContent-Length: " + body.length
                + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
        byte[] answer = Arrays.copyOf(head, head.length + body.length);
        System.arraycopy(body, 0, answer, head.length, body.length);
        return answer;
    }

    @Override
    public Connection newConnection(Connector connector, EndPoint endPoint) {
        var connection = new DeadlinedConnection(getHttpConfiguration(), connector, endPoint,
                deadlines(connector.getScheduler()));
        connection.setTransferEncodingChunkMaxLength(getTransferEncodingChunkMaxLength());
        return configure(connection, connector, endPoint);
    }

    private CyclicTimeouts<DeadlinedConnection> deadlines(Scheduler scheduler) {
        var made = deadlines;
        if (made == null) {
            synchronized (this) {
                made = deadlines;
                if (made == null) {
                    made = new CyclicTimeouts<>(scheduler) {
                        @Override
                        protected Iterator<DeadlinedConnection> iterator() {
                            return open.iterator();
                        }

                        @Override
                        protected boolean onExpired(DeadlinedConnection connection) {
                            connection.expire();
                            return false; // it leaves the set when it closes
                        }
                    };
                    deadlines = made;
                }
            }
        }
        return made;
    }

    @Override
    protected synchronized void doStop() throws Exception {
        if (deadlines != null) {
            deadlines.destroy();
            deadlines = null; // a restart makes a new one
        }
        super.doStop();
    }

    /** The path of a request line's target: origin form ({@code /v1/models?x}) or absolute ({@code http://h/v1/models}). */
    static String path(String target) {
        if (target == null) {
            return null;
        }
        int query = target.indexOf('?');
        String path = query >= 0 ? target.substring(0, query) : target;
        if (path.startsWith("/")) {
            return path;
        }
        try {
            return URI.create(path).getPath();
        } catch (IllegalArgumentException notAUri) {
            return null;
        }
    }

    /** One client connection: at most one deadline is armed at a time, for the request being received. */
    private final class DeadlinedConnection extends HttpConnection implements CyclicTimeouts.Expirable {

        private final CyclicTimeouts<DeadlinedConnection> deadlines;
        private final AtomicReference<Deadline> armed = new AtomicReference<>();
        /** Whether any byte of the current request has come (a connection that sent nothing gets no 408). */
        private volatile boolean begun;
        /** Whether the current request's line named the OpenAI-compatible API: its 408 is in OpenAI's shape. */
        private volatile boolean openAi;

        DeadlinedConnection(HttpConfiguration configuration, Connector connector, EndPoint endPoint,
                CyclicTimeouts<DeadlinedConnection> deadlines) {
            super(configuration, connector, endPoint);
            this.deadlines = deadlines;
        }

        @Override
        public void onOpen() {
            open.add(this);
            arm(Phase.HEADERS, headerMillis); // the first request's headers count from the connection's opening
            super.onOpen();
        }

        @Override
        public void onClose(Throwable cause) {
            armed.set(null);
            open.remove(this);
            super.onClose(cause);
        }

        @Override
        protected RequestHandler newRequestHandler() {
            return new RequestHandler() {
                @Override
                public void messageBegin() {
                    begun = true;
                    if (armed.get() == null) {
                        arm(Phase.HEADERS, headerMillis); // a kept-alive connection's next request, from its first byte
                    }
                    super.messageBegin();
                }

                @Override
                public void startRequest(String method, String target, HttpVersion version) {
                    openAi = OpenAiAdvice.covers(path(target));
                    super.startRequest(method, target, version);
                }

                @Override
                public boolean headerComplete() {
                    arm(Phase.BODY, bodyMillis);
                    return super.headerComplete();
                }

                @Override
                public boolean messageComplete() {
                    armed.set(null);
                    begun = false;
                    openAi = false;
                    return super.messageComplete();
                }
            };
        }

        private void arm(Phase phase, long millis) {
            armed.set(new Deadline(phase, NanoTime.now() + TimeUnit.MILLISECONDS.toNanos(millis)));
            deadlines.schedule(this); // a later time than the timer's next: nothing to schedule
        }

        @Override
        public long getExpireNanoTime() {
            Deadline deadline = armed.get();
            return deadline == null ? Long.MAX_VALUE : deadline.at;
        }

        /** On the timer, when this connection's deadline may have passed, unless the request got there first. */
        void expire() {
            Deadline deadline = armed.get();
            if (deadline == null || NanoTime.isBefore(NanoTime.now(), deadline.at) || !armed.compareAndSet(deadline, null)) {
                return; // disarmed or re-armed meanwhile
            }
            onTimeout.accept(deadline.phase);
            EndPoint endPoint = getEndPoint();
            if (deadline.phase == Phase.BODY) {
                // as Jetty's own idle timeout: a handled request's waiting read fails; else the connection closes
                var late = new TimeoutException("the request body did not arrive within " + bodyMillis + " ms");
                if (onIdleExpired(late)) {
                    endPoint.close(late);
                }
            } else if (begun) {
                endPoint.write(Callback.from(endPoint::close, failed -> endPoint.close()),
                        ByteBuffer.wrap(openAi ? lateHeadersOpenAi : lateHeaders));
            } else {
                endPoint.close();
            }
        }
    }

    /** Which deadline is armed, and when (in {@link NanoTime}) it passes. */
    private record Deadline(Phase phase, long at) {}
}
