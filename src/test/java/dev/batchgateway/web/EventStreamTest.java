package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.WorkerException;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockAsyncContext;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.web.context.request.async.AsyncRequestTimeoutException;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.context.request.async.StandardServletAsyncWebRequest;
import org.springframework.web.context.request.async.WebAsyncManager;
import org.springframework.web.context.request.async.WebAsyncUtils;

/**
 * The per-caller stream between the worker's thread, which never waits, and a client that may read slowly, written
 * without blocking by whichever thread finds the connection ready.
 */
class EventStreamTest {

    private static final long SLACK_SECONDS = 10;
    private final AtomicInteger gone = new AtomicInteger();
    private final AtomicInteger starting = new AtomicInteger();
    private final AnswerWait wait = new AnswerWait(Duration.ofSeconds(60));

    @Test
    void theStreamIsTheAnswerOnceItsFirstEventCameAndItsEventsAreWrittenInOrderWithTheStreamsHeaders() throws Exception {
        // Given a stream whose answer is waited for
        var stream = new EventStream("{\"cut\": true}", gone::incrementAndGet);
        DeferredResult<EventStream> answer = stream.answer(wait, starting::incrementAndGet);
        assertThat(answer.hasResult()).isFalse();

        // When its first event comes
        stream.send("{\"delta\": \"a\"}");

        // Then the stream is the answer, the connection given back to the container first
        assertThat(answer.getResult()).isSameAs(stream);
        assertThat(starting).hasValue(1);

        // And once it has the connection its events go out in order, then the answer ends
        var client = new StreamClient(true);
        var connection = client.connection();
        stream.writeTo(connection);
        stream.send("{\"delta\": \"b\"}");
        assertThat(client.read()).as("each event flushed as it comes")
                .isEqualTo("data: {\"delta\": \"a\"}\n\ndata: {\"delta\": \"b\"}\n\n");
        stream.end("{\"done\": true}");

        assertThat(client.response.getStatus()).isEqualTo(200);
        assertThat(client.response.getContentType()).startsWith("text/event-stream");
        assertThat(client.response.getCharacterEncoding()).isEqualTo("UTF-8");
        assertThat(client.response.getHeader("Cache-Control")).isEqualTo("no-cache");
        assertThat(connection.getTimeout()).as("no container timeout: the scheduler's deadline ends a stream").isZero();
        assertThat(client.read()).isEqualTo(
                "data: {\"delta\": \"a\"}\n\ndata: {\"delta\": \"b\"}\n\ndata: {\"done\": true}\n\n");
        assertThat(client.completions).hasValue(1);
        assertThat(client.misused).isFalse();
        assertThat(gone).hasValue(0);
    }

    @Test
    void aNamedEventGoesWithItsEventLineAndABareOneWithout() throws Exception {
        var stream = new EventStream(EventStream.named("error", "{\"cut\": true}"), gone::incrementAndGet);
        stream.send(EventStream.named("response.created", "{\"type\": \"response.created\"}"));
        stream.send("{\"delta\": \"a\"}");
        stream.end(EventStream.named("response.completed", "{}"));
        var client = new StreamClient(true);

        stream.writeTo(client.connection());

        assertThat(client.read()).isEqualTo("event: response.created\ndata: {\"type\": \"response.created\"}\n\n"
                + "data: {\"delta\": \"a\"}\n\nevent: response.completed\ndata: {}\n\n");
    }

    @Test
    void aFailureBeforeTheFirstEventIsTheAnswerForAnOrdinaryHttpError() {
        var stream = new EventStream("{}", gone::incrementAndGet);
        DeferredResult<EventStream> answer = stream.answer(wait, starting::incrementAndGet);
        var refused = new WorkerException.Rejected("prompt too long");

        stream.fail(refused, "{\"error\": {}}");
        stream.send("{\"delta\": \"too late\"}");

        assertThat(answer.getResult()).isSameAs(refused);
        assertThat(starting).hasValue(1);
        assertThat(gone).hasValue(0);
    }

    @Test
    void aFailureAfterTheFirstEventEndsTheStreamWithItsErrorEvent() throws Exception {
        var stream = new EventStream("{}", gone::incrementAndGet);
        DeferredResult<EventStream> answer = stream.answer(wait, starting::incrementAndGet);
        stream.send("{\"delta\": \"a\"}");
        stream.fail(new WorkerException.BadAnswer("broke off"), "{\"error\": {\"status\": 502}}");
        stream.send("{\"delta\": \"too late\"}");
        var client = new StreamClient(true);

        stream.writeTo(client.connection());

        assertThat(answer.getResult()).isSameAs(stream);
        assertThat(client.read()).isEqualTo("data: {\"delta\": \"a\"}\n\ndata: {\"error\": {\"status\": 502}}\n\n");
        assertThat(client.completions).hasValue(1);
    }

    @Test
    void aReaderThatFallsTooFarBehindIsCutOffWithoutEverBlockingTheSenderOrWritingToAFullConnection() throws Exception {
        // Given a client that takes the first event and then reads nothing
        var stream = new EventStream("{\"error\": \"too slow\"}", gone::incrementAndGet);
        var client = new StreamClient(false);
        stream.send("{\"delta\": \"first\"}");
        stream.writeTo(client.connection());

        // When the worker sends far more than the buffer holds (each send returns at once: the sender never waits)
        String piece = "{\"delta\": \"" + "x".repeat(1000) + "\"}";
        int sends = 2 * EventStream.MAX_BUFFERED_CHARS / piece.length();
        for (int i = 0; i < sends; i++) {
            stream.send(piece);
        }

        // Then the request is given up once, nothing was written while the connection was full, and the answer waits
        assertThat(gone).hasValue(1);
        assertThat(client.misused).isFalse();
        assertThat(client.completions).hasValue(0);

        // And when the client reads at last it gets, after the event it had been given, only the cut-off event
        client.reads();
        client.reads();
        assertThat(client.read()).isEqualTo("data: {\"delta\": \"first\"}\n\ndata: {\"error\": \"too slow\"}\n\n");
        assertThat(client.completions).hasValue(1);
        assertThat(gone).hasValue(1);
    }

    @Test
    void theContainersCallThatTheClientHasReadIsNotLostWhenItComesWhileTheWriterStillWrites() throws Exception {
        // Given a client that takes one write at a time and reads it before the writer has let go of the connection
        var stream = new EventStream("{}", gone::incrementAndGet);
        stream.send("{\"delta\": \"a\"}");
        stream.send("{\"delta\": \"b\"}");
        stream.end("{\"done\": true}");
        var client = new StreamClient(false);
        client.readsWhileTheWriterIsStillWriting();

        // When the stream is written to it
        stream.writeTo(client.connection());

        // Then the writer looks again when told, and every event goes out, then the answer ends
        assertThat(client.read()).isEqualTo("data: {\"delta\": \"a\"}\n\ndata: {\"delta\": \"b\"}\n\ndata: {\"done\": true}\n\n");
        assertThat(client.completions).hasValue(1);
        assertThat(client.misused).isFalse();
    }

    @Test
    void aClientWhoseConnectionFailsWhileWrittenToHasGoneOnce() throws Exception {
        var stream = new EventStream("{}", gone::incrementAndGet);
        stream.send("{\"delta\": \"a\"}");
        var client = new StreamClient(true);
        client.failure = new IOException("Connection reset by peer");

        stream.writeTo(client.connection());
        stream.send("{\"delta\": \"b\"}");
        stream.end("{\"done\": true}");

        assertThat(gone).hasValue(1);
        assertThat(client.completions).hasValue(1);
    }

    @Test
    void aConnectionTheContainerSawFailGivesTheRequestUpOnceAndNothingMoreIsWritten() throws Exception {
        // Given a stream written to a client that has not read its first event
        var stream = new EventStream("{}", gone::incrementAndGet);
        stream.send("{\"delta\": \"a\"}");
        var client = new StreamClient(false);
        stream.writeTo(client.connection());

        // When the container tells of a failed write, then of the failed connection
        client.listener.onError(new IOException("Broken pipe"));
        for (AsyncListener listener : client.async.getListeners()) {
            listener.onError(new AsyncEvent(client.async, new IOException("Broken pipe")));
        }
        stream.send("{\"delta\": \"b\"}");
        stream.end("{\"done\": true}");

        // Then the request is given up once, the answer ended once, and nothing more was written
        assertThat(gone).hasValue(1);
        assertThat(client.completions).hasValue(1);
        client.reads();
        assertThat(client.read()).isEqualTo("data: {\"delta\": \"a\"}\n\n");
    }

    @Test
    void aCallerThatGaveUpBeforeTheFirstEventIsGoneOnceAndHasNoStream() throws Exception {
        // Given a stream's answer that the container waits for
        var stream = new EventStream("{}", gone::incrementAndGet);
        var request = new MockHttpServletRequest();
        request.setAsyncSupported(true);
        WebAsyncManager manager = WebAsyncUtils.getAsyncManager(request);
        manager.setAsyncWebRequest(new StandardServletAsyncWebRequest(request, new MockHttpServletResponse()));
        manager.startDeferredResultProcessing(stream.answer(wait, starting::incrementAndGet));

        // When the container's safety net gives it up before the first event
        for (AsyncListener listener : ((MockAsyncContext) request.getAsyncContext()).getListeners()) {
            listener.onTimeout(new AsyncEvent(request.getAsyncContext()));
        }
        stream.send("{\"delta\": \"late\"}");

        // Then the caller gets the timeout's answer and its request is given up, once
        assertThat(manager.getConcurrentResult()).isInstanceOf(AsyncRequestTimeoutException.class);
        assertThat(gone).hasValue(1);
    }

    @Test
    void sendersOnManyThreadsAndAClientReadingInFitsAndStartsGetEveryEventInOrderFromOneWriterAtATime() throws Exception {
        // Given a stream being written to a client that takes one write at a time, reading on a thread of its own
        int senders = 4;
        int eventsEach = 200;
        var stream = new EventStream("{}", gone::incrementAndGet);
        stream.send("{\"first\": true}");
        var client = new StreamClient(false);
        var connection = client.connection();
        var ended = new CountDownLatch(1);
        connection.addListener(new Completion(ended));
        stream.writeTo(connection);
        Thread reader = Thread.ofVirtual().start(() -> {
            while (ended.getCount() > 0) {
                try {
                    client.reads();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                Thread.yield();
            }
        });

        // When several threads send at once, then the stream ends
        List<Thread> threads = new ArrayList<>();
        var go = new CountDownLatch(1);
        for (int s = 0; s < senders; s++) {
            int sender = s;
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < eventsEach; i++) {
                    stream.send("{\"s\": " + sender + ", \"i\": " + i + "}");
                }
            }));
        }
        go.countDown();
        for (Thread thread : threads) {
            assertThat(thread.join(Duration.ofSeconds(SLACK_SECONDS))).as("a sender waited").isTrue();
        }
        stream.end("{\"done\": true}");

        // Then the client got every event, each sender's in its order, then the last, written by one thread at a time
        assertThat(ended.await(SLACK_SECONDS, TimeUnit.SECONDS)).as("the answer ended within %d s", SLACK_SECONDS).isTrue();
        assertThat(reader.join(Duration.ofSeconds(SLACK_SECONDS))).isTrue();
        List<String> events = client.read().lines().filter(line -> !line.isEmpty()).toList();
        assertThat(events).hasSize(1 + senders * eventsEach + 1);
        assertThat(events.getFirst()).isEqualTo("data: {\"first\": true}");
        assertThat(events.getLast()).isEqualTo("data: {\"done\": true}");
        for (int s = 0; s < senders; s++) {
            String prefix = "data: {\"s\": " + s + ", ";
            List<String> own = new ArrayList<>();
            for (int i = 0; i < eventsEach; i++) {
                own.add(prefix + "\"i\": " + i + "}");
            }
            assertThat(events.stream().filter(event -> event.startsWith(prefix)).toList()).containsExactlyElementsOf(own);
        }
        assertThat(client.overlapped).as("two threads wrote at once").isFalse();
        assertThat(client.misused).as("written while the connection was full").isFalse();
        assertThat(client.completions).hasValue(1);
        assertThat(gone).hasValue(0);
    }

    /** Counts down when the answer has ended. */
    private record Completion(CountDownLatch ended) implements AsyncListener {
        @Override
        public void onComplete(AsyncEvent event) {
            ended.countDown();
        }

        @Override
        public void onTimeout(AsyncEvent event) {}

        @Override
        public void onError(AsyncEvent event) {}

        @Override
        public void onStartAsync(AsyncEvent event) {}
    }
}
