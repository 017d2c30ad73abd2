package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.WorkerException;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockHttpServletResponse;

/** The per-caller buffer between the worker's thread, which never waits, and a client that may read slowly. */
class EventStreamTest {

    private static final long SLACK_SECONDS = 10;
    private final AtomicInteger gone = new AtomicInteger();

    @Test
    void eventsAreWrittenInOrderWithTheStreamsHeaders() throws Exception {
        var stream = new EventStream("{\"cut\": true}", gone::incrementAndGet);
        stream.send("{\"delta\": \"a\"}");
        stream.send("{\"delta\": \"b\"}");
        stream.end("{\"done\": true}");
        var response = new MockHttpServletResponse();

        stream.writeTo(response, () -> {});

        assertThat(response.getStatus()).isEqualTo(200);
        assertThat(response.getContentType()).startsWith("text/event-stream");
        assertThat(response.getHeader("Cache-Control")).isEqualTo("no-cache");
        assertThat(response.getContentAsString()).isEqualTo(
                "data: {\"delta\": \"a\"}\n\ndata: {\"delta\": \"b\"}\n\ndata: {\"done\": true}\n\n");
        assertThat(gone).hasValue(0);
    }

    @Test
    void aNamedEventGoesWithItsEventLineAndABareOneWithout() throws Exception {
        var stream = new EventStream(EventStream.named("error", "{\"cut\": true}"), gone::incrementAndGet);
        stream.send(EventStream.named("response.created", "{\"type\": \"response.created\"}"));
        stream.send("{\"delta\": \"a\"}");
        stream.end(EventStream.named("response.completed", "{}"));
        var response = new MockHttpServletResponse();

        stream.writeTo(response, () -> {});

        assertThat(response.getContentAsString()).isEqualTo("event: response.created\ndata: {\"type\": \"response.created\"}\n\n"
                + "data: {\"delta\": \"a\"}\n\nevent: response.completed\ndata: {}\n\n");
    }

    @Test
    void aFailureBeforeTheFirstEventIsThrownForAnOrdinaryHttpErrorAndNothingIsWritten() {
        var stream = new EventStream("{}", gone::incrementAndGet);
        var refused = new WorkerException.Rejected("prompt too long");
        stream.fail(refused, "{\"error\": {}}");
        var response = new MockHttpServletResponse();
        var started = new AtomicInteger();

        assertThatThrownBy(() -> stream.writeTo(response, started::incrementAndGet)).isSameAs(refused);
        assertThat(started).hasValue(1);
        assertThat(response.isCommitted()).isFalse();
        assertThat(response.getContentAsByteArray()).isEmpty();
    }

    @Test
    void aFailureAfterTheFirstEventEndsTheStreamWithItsErrorEvent() throws Exception {
        var stream = new EventStream("{}", gone::incrementAndGet);
        stream.send("{\"delta\": \"a\"}");
        stream.fail(new WorkerException.BadAnswer("broke off"), "{\"error\": {\"status\": 502}}");
        stream.send("{\"delta\": \"too late\"}");
        var response = new MockHttpServletResponse();

        stream.writeTo(response, () -> {});

        assertThat(response.getContentAsString()).isEqualTo("data: {\"delta\": \"a\"}\n\ndata: {\"error\": {\"status\": 502}}\n\n");
    }

    @Test
    void aReaderThatFallsTooFarBehindIsCutOffWithoutEverBlockingTheSender() throws Exception {
        // Given a client that reads nothing: its first write blocks until the test lets it go
        var stream = new EventStream("{\"error\": \"too slow\"}", gone::incrementAndGet);
        var blocked = new CountDownLatch(1);
        var release = new CountDownLatch(1);
        var written = new StringBuilder();
        var response = writingTo((bytes, offset, length) -> {
            blocked.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new IOException(e);
            }
            written.append(new String(bytes, offset, length, StandardCharsets.UTF_8));
        });
        stream.send("{\"delta\": \"first\"}");
        Thread writer = Thread.ofVirtual().start(() -> {
            try {
                stream.writeTo(response, () -> {});
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        assertThat(blocked.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

        // When the worker sends far more than the buffer holds (each send returns at once: the sender never waits)
        String piece = "{\"delta\": \"" + "x".repeat(1000) + "\"}";
        int sends = 2 * EventStream.MAX_BUFFERED_CHARS / piece.length();
        for (int i = 0; i < sends; i++) {
            stream.send(piece);
        }

        // Then the request is given up once, and after the event being written the client gets only the cut-off event
        assertThat(gone).hasValue(1);
        release.countDown();
        writer.join(TimeUnit.SECONDS.toMillis(SLACK_SECONDS));
        assertThat(written.toString()).isEqualTo("data: {\"delta\": \"first\"}\n\ndata: {\"error\": \"too slow\"}\n\n");
    }

    @Test
    void aClientWhoseConnectionFailsHasGone() throws Exception {
        var stream = new EventStream("{}", gone::incrementAndGet);
        stream.send("{\"delta\": \"a\"}");
        stream.end("{\"done\": true}");
        var response = writingTo((bytes, offset, length) -> {
            throw new IOException("Connection reset by peer");
        });

        stream.writeTo(response, () -> {});

        assertThat(gone).hasValue(1);
    }

    /** What a client's connection does with the bytes written to it. */
    @FunctionalInterface
    interface Connection {
        void write(byte[] bytes, int offset, int length) throws IOException;
    }

    /** A response whose output goes to this connection. */
    private static MockHttpServletResponse writingTo(Connection connection) {
        return new MockHttpServletResponse() {
            @Override
            public ServletOutputStream getOutputStream() {
                return new ServletOutputStream() {
                    @Override
                    public void write(int b) throws IOException {
                        write(new byte[] {(byte) b}, 0, 1);
                    }

                    @Override
                    public void write(byte[] bytes, int offset, int length) throws IOException {
                        connection.write(bytes, offset, length);
                    }

                    @Override
                    public boolean isReady() {
                        return true;
                    }

                    @Override
                    public void setWriteListener(WriteListener listener) {}
                };
            }
        };
    }
}
