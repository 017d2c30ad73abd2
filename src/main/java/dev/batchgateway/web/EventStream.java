package dev.batchgateway.web;

import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.servlet.mvc.method.annotation.StreamingResponseBody;

/**
 * One streamed answer ({@code text/event-stream}, one {@code data: <json>} event per piece) on its way to a client that
 * may read slowly. The worker's thread queues events here and never waits; the response's own (virtual) thread writes
 * them, so a slow reader holds up nobody but itself.
 *
 * <p>Nothing is sent until the first event: a request that fails before it gets an ordinary HTTP error (problem+json,
 * or OpenAI's error shape), through {@link #fail}. Then the answer is {@code 200} and every later failure is an event.
 *
 * <p>A client that falls more than {@value #MAX_BUFFERED_CHARS} characters behind is cut off: what it has not read is
 * dropped, its stream ends with the cut-off event, and its request is given up (billed as the worker reports it: the
 * client has gone). A client whose connection fails while events are written has gone too.
 */
final class EventStream implements StreamingResponseBody {

    /** How far behind a reader may fall, in characters of events not yet written: a whole long answer, and more. */
    static final int MAX_BUFFERED_CHARS = 64 * 1024;
    private static final String END = new String("end");

    private final DeferredResult<Object> answer;
    private final HttpServletResponse response;
    private final String cutOff;
    private final Runnable gone;
    private final Runnable starting;
    private final BlockingQueue<String> events = new LinkedBlockingQueue<>();
    // guarded by this
    private boolean started;
    private boolean ended;
    private int buffered;

    /**
     * @param answer resolved with this stream at its first event, or with the failure that came before any
     * @param response the response the stream is written to; given its status and headers at the first event
     * @param cutOff the data of the event that ends the stream of a client that fell too far behind
     * @param gone gives up the request(s) of a client that has gone or was cut off
     * @param starting runs just before the answer is handed to the container (the connection is its again)
     */
    EventStream(DeferredResult<Object> answer, HttpServletResponse response, String cutOff, Runnable gone, Runnable starting) {
        this.answer = answer;
        this.response = response;
        this.cutOff = cutOff;
        this.gone = gone;
        this.starting = starting;
        answer.onTimeout(gone);
        answer.onError(failure -> gone.run());
    }

    /** Queues one event; starts the answer at the first. Never blocks. */
    void send(String data) {
        boolean cut;
        synchronized (this) {
            if (ended) {
                return;
            }
            String event = "data: " + data + "\n\n";
            cut = buffered + event.length() > MAX_BUFFERED_CHARS;
            if (cut) {
                // the reader is too far behind: drop what it has not read, end it here
                events.clear();
                buffered = 0;
                events.add("data: " + cutOff + "\n\n");
                events.add(END);
                ended = true;
            } else {
                events.add(event);
                buffered += event.length();
            }
            start();
        }
        if (cut) {
            gone.run();
        }
    }

    /** Queues the last events and ends the stream. */
    synchronized void end(String... last) {
        if (ended) {
            return;
        }
        for (String data : last) {
            events.add("data: " + data + "\n\n");
        }
        events.add(END);
        ended = true;
        start();
    }

    /**
     * The request failed: before the first event, an ordinary HTTP error from {@code beforeStart}; after it, the
     * stream ends with the {@code afterStart} events.
     */
    synchronized void fail(Throwable beforeStart, String... afterStart) {
        if (ended) {
            return;
        }
        if (!started) {
            ended = true;
            starting.run();
            answer.setErrorResult(beforeStart);
            return;
        }
        end(afterStart);
    }

    private void start() {
        if (!started) {
            started = true;
            starting.run();
            // set here, not through a ResponseEntity: MVC picks its stream handler by the result's own type
            response.setStatus(HttpServletResponse.SC_OK);
            response.setContentType(MediaType.TEXT_EVENT_STREAM_VALUE);
            response.setCharacterEncoding(StandardCharsets.UTF_8.name());
            response.setHeader(HttpHeaders.CACHE_CONTROL, "no-cache");
            answer.setResult(this);
        }
    }

    @Override
    public void writeTo(OutputStream out) throws IOException {
        try {
            while (true) {
                String event = events.take();
                if (event == END) {
                    return;
                }
                synchronized (this) {
                    buffered -= event.length();
                }
                out.write(event.getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
        } catch (IOException clientGone) {
            gone.run();
        } catch (InterruptedException e) {
            gone.run();
            Thread.currentThread().interrupt();
        }
    }
}
