package dev.batchgateway.web;

import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;

/**
 * One streamed answer ({@code text/event-stream}, one {@code data: <json>} event per piece, {@link #named} or not) on
 * its way to a client that may read slowly. The worker's thread queues events here and never waits; the request's own virtual thread writes
 * them ({@link #writeTo}), so a slow reader holds up nobody but itself.
 *
 * <p>Nothing is sent until the first event: a request that fails before it ({@link #fail}) gets an ordinary HTTP
 * error (problem+json, or OpenAI's error shape), thrown from {@link #writeTo} for the web adapter's exception handlers.
 * From the first event on the answer is {@code 200}, and a failure is an event.
 *
 * <p>A client that falls more than {@value #MAX_BUFFERED_CHARS} characters behind is cut off: what it has not read is
 * dropped, its stream ends with the cut-off event, and its request is given up (billed as the worker reports it: the
 * client has gone). So is the request of a client whose connection fails while events are written.
 */
final class EventStream {

    /** How far behind a reader may fall, in characters of events not yet written: a whole long answer, and more. */
    static final int MAX_BUFFERED_CHARS = 64 * 1024;

    /** What the writer takes from the queue: an event to write, the end, or the failure that came before any event. */
    private sealed interface Item {}

    private record Event(String text) implements Item {}

    private record End() implements Item {}

    private record FailedBeforeStart(RuntimeException failure) implements Item {}

    private final String cutOff;
    private final Runnable gone;
    private final BlockingQueue<Item> items = new LinkedBlockingQueue<>();
    // guarded by this
    private boolean started;
    private boolean ended;
    private int buffered;

    /**
     * @param cutOff the data of the event that ends the stream of a client that fell too far behind
     * @param gone gives up the request(s) of a client that has gone or was cut off
     */
    EventStream(String cutOff, Runnable gone) {
        this.cutOff = cutOff;
        this.gone = gone;
    }

    /**
     * An event with its name on an {@code event:} line before its data, as OpenAI's Responses API sends its events; what
     * is sent bare goes as a {@code data:} line alone (data is JSON or {@code [DONE]}, never {@code event: …}).
     */
    static String named(String event, String data) {
        return "event: " + event + "\ndata: " + data;
    }

    private static String frame(String data) {
        return (data.startsWith("event: ") ? data : "data: " + data) + "\n\n";
    }

    /** Queues one event. Never blocks. */
    void send(String data) {
        boolean cut;
        synchronized (this) {
            if (ended) {
                return;
            }
            var event = new Event(frame(data));
            cut = buffered + event.text().length() > MAX_BUFFERED_CHARS;
            if (cut) {
                // the reader is too far behind: drop what it has not read, end it here
                items.clear();
                buffered = 0;
                items.add(new Event(frame(cutOff)));
                items.add(new End());
                ended = true;
            } else {
                items.add(event);
                buffered += event.text().length();
            }
            started = true;
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
            items.add(new Event(frame(data)));
        }
        items.add(new End());
        ended = true;
        started = true;
    }

    /**
     * The request failed: before the first event, {@code beforeStart} is thrown by {@link #writeTo} to become an
     * ordinary HTTP error; after it, the stream ends with the {@code afterStart} events.
     */
    synchronized void fail(RuntimeException beforeStart, String... afterStart) {
        if (ended) {
            return;
        }
        if (!started) {
            ended = true;
            items.add(new FailedBeforeStart(beforeStart));
            return;
        }
        end(afterStart);
    }

    /**
     * Waits on the request's own (virtual) thread for the first event, then writes the stream to the response until its
     * end, each event flushed as it comes.
     *
     * @param starting runs once the answer is known, before anything is written (the connection is the container's
     *     again)
     * @throws RuntimeException the failure that came before the first event
     */
    void writeTo(HttpServletResponse response, Runnable starting) throws InterruptedException {
        Item first = items.take();
        starting.run();
        if (first instanceof FailedBeforeStart(RuntimeException failure)) {
            throw failure;
        }
        response.setStatus(HttpServletResponse.SC_OK);
        response.setContentType(MediaType.TEXT_EVENT_STREAM_VALUE);
        response.setCharacterEncoding(StandardCharsets.UTF_8.name());
        response.setHeader(HttpHeaders.CACHE_CONTROL, "no-cache");
        try {
            OutputStream out = response.getOutputStream();
            for (Item item = first; item instanceof Event(String text); item = items.take()) {
                synchronized (this) {
                    buffered -= text.length();
                }
                out.write(text.getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
        } catch (IOException clientGone) {
            gone.run();
        } catch (InterruptedException e) {
            gone.run();
            throw e;
        }
    }
}
