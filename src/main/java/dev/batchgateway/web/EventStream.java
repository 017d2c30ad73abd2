package dev.batchgateway.web;

import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.stereotype.Component;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.context.request.async.WebAsyncManager;
import org.springframework.web.context.request.async.WebAsyncUtils;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * One streamed answer ({@code text/event-stream}, one {@code data: <json>} event per piece, {@link #named} or not) on
 * its way to a client that may read slowly, with no thread of its own: neither while it waits for its first event nor
 * while a slow client reads. A parked request thread held its whole stack on the heap, about 13 KB a caller (issue 32).
 * The worker's thread queues events here and never waits; they are written without blocking (Servlet's {@link
 * WriteListener}) by whichever thread finds the connection ready to take them: the one that queued an event, or the
 * container's once the client has read what was written before. One thread writes at a time, so a slow reader holds
 * up nobody but itself.
 *
 * <p>Nothing is sent until the first event: the controller returns {@link #answer}, which the container waits for
 * without a thread, as for an answer that is not streamed ({@link AnswerWait}). A request that fails before it
 * ({@link #fail}) gets an ordinary HTTP error (problem+json, or OpenAI's error shape) from the web adapter's exception
 * handlers. From the first event on the answer is {@code 200}, and a failure is an event: the answer is this stream,
 * and {@link Handover} gives it the connection in the container's async dispatch, before Spring MVC sees it.
 *
 * <p>A client that falls more than {@value #MAX_BUFFERED_CHARS} characters behind is cut off: what it has not read is
 * dropped, its stream ends with the cut-off event, and its request is given up (billed as the worker reports it: the
 * client has gone). So is the request of a client whose connection fails, or that gave up before the first event.
 */
final class EventStream {

    /** How far behind a reader may fall, in characters of events not yet written: a whole long answer, and more. */
    static final int MAX_BUFFERED_CHARS = 64 * 1024;

    private final String cutOff;
    private final Runnable gone;
    /** This stream at its first event, or the failure that came before it; cancelled if the caller gave up first. */
    private final CompletableFuture<EventStream> begun = new CompletableFuture<>();
    // guarded by this
    private final Deque<String> events = new ArrayDeque<>();
    private int buffered;
    private boolean started;
    /** No more events: the stream ends once those queued are written. */
    private boolean ended;
    /** The client has gone or was cut off, and {@link #gone} has run. */
    private boolean left;
    private Connection connection;
    /** A thread is writing; another that found it so has asked it to look again ({@link #write(Connection)}). */
    private boolean writing;
    private boolean writeAgain;
    private boolean unflushed;
    private boolean completed;

    /**
     * @param cutOff the data of the event that ends the stream of a client that fell too far behind
     * @param gone gives up the request(s) of a client that has gone or was cut off; runs at most once
     */
    EventStream(String cutOff, Runnable gone) {
        this.cutOff = cutOff;
        this.gone = gone;
        begun.whenComplete((stream, failure) -> {
            if (begun.isCancelled()) {
                leave(); // the caller gave up before the first event (the container's safety net, or its connection)
            }
        });
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

    /**
     * The answer to come, for the controller to return: this stream once its first event came, or the failure that
     * came before it, waited for as {@code wait} waits for any answer (its safety net, a caller that gave up).
     *
     * @param starting runs once the answer is known, before anything is written (the connection is the container's
     *     again)
     */
    DeferredResult<EventStream> answer(AnswerWait wait, Runnable starting) {
        return wait.answer(begun, Function.identity(), starting);
    }

    /** Queues one event. Never blocks. */
    void send(String data) {
        String event = frame(data);
        boolean first;
        boolean cut = false;
        synchronized (this) {
            if (ended) {
                return;
            }
            first = !started;
            started = true;
            if (buffered + event.length() > MAX_BUFFERED_CHARS) {
                // the reader is too far behind: drop what it has not read, end it here
                events.clear();
                buffered = 0;
                queue(frame(cutOff));
                ended = true;
                cut = !left;
                left = true;
            } else {
                queue(event);
            }
        }
        if (cut) {
            gone.run();
        }
        if (first) {
            begun.complete(this);
        }
        write();
    }

    /** Queues the last events and ends the stream. Never blocks. */
    void end(String... last) {
        boolean first;
        synchronized (this) {
            if (ended) {
                return;
            }
            first = !started;
            started = true;
            ended = true;
            for (String data : last) {
                queue(frame(data));
            }
        }
        if (first) {
            begun.complete(this);
        }
        write();
    }

    /**
     * The request failed: before the first event, {@code beforeStart} is the answer, an ordinary HTTP error; after it,
     * the stream ends with the {@code afterStart} events. Never blocks.
     */
    void fail(RuntimeException beforeStart, String... afterStart) {
        boolean beforeTheFirst;
        synchronized (this) {
            if (ended) {
                return;
            }
            beforeTheFirst = !started;
            ended = beforeTheFirst;
        }
        if (beforeTheFirst) {
            begun.completeExceptionally(beforeStart);
        } else {
            end(afterStart);
        }
    }

    private void queue(String event) {
        events.add(event);
        buffered += event.length();
    }

    /**
     * Takes the connection, in an async cycle of the stream's own, and starts the answer: {@code 200}, {@code
     * text/event-stream}, then the events as the client takes them. Called once, after the stream has begun.
     */
    void writeTo(AsyncContext async) throws IOException {
        // no limit of the container's: the scheduler's deadline ends every stream, with its last event or an error
        // event; a write that the client does not take fails at the connection's idle timeout
        async.setTimeout(0);
        var response = (HttpServletResponse) async.getResponse();
        response.setStatus(HttpServletResponse.SC_OK);
        response.setContentType(MediaType.TEXT_EVENT_STREAM_VALUE);
        response.setCharacterEncoding(StandardCharsets.UTF_8.name());
        response.setHeader(HttpHeaders.CACHE_CONTROL, "no-cache");
        var taken = new Connection(async, response.getOutputStream());
        async.addListener(taken);
        // from here on the output never blocks; the container calls onWritePossible once it can be written to
        taken.out.setWriteListener(taken);
        synchronized (this) {
            connection = taken;
        }
    }

    /** Writes what is queued, if the stream has its connection; see {@link #write(Connection)}. */
    private void write() {
        Connection taken;
        synchronized (this) {
            taken = connection;
        }
        if (taken != null) {
            write(taken);
        }
    }

    /**
     * Writes the queued events while the connection takes them without waiting, then flushes them; at the end of the
     * stream, completes the answer. One thread at a time: a thread that finds another writing asks it to look again and
     * returns, so that neither an event queued meanwhile nor the container's call that the client has read is lost.
     * When the connection cannot take more, the writer returns: the container calls {@code onWritePossible} once the
     * client has read.
     */
    private void write(Connection to) {
        synchronized (this) {
            if (writing || completed) {
                writeAgain = true;
                return;
            }
            writing = true;
        }
        try {
            while (true) {
                boolean ready = to.out.isReady();
                String next = null;
                boolean flush = false;
                synchronized (this) {
                    if (completed) {
                        return;
                    }
                    if (ready) {
                        next = events.poll();
                    }
                    if (next != null) {
                        buffered -= next.length();
                        unflushed = true;
                    } else if (ready && ended) {
                        completed = true; // the last event is written: the container ends the answer
                    } else if (ready && unflushed) {
                        flush = true;
                        unflushed = false;
                    } else if (writeAgain) {
                        writeAgain = false;
                        continue;
                    } else {
                        writing = false;
                        return;
                    }
                }
                if (next != null) {
                    to.out.write(next.getBytes(StandardCharsets.UTF_8));
                } else if (flush) {
                    to.out.flush();
                } else {
                    to.async.complete();
                    return;
                }
            }
        } catch (IOException | RuntimeException failed) {
            // its connection failed (Spring's wrapper or the container may say so unchecked): the client has gone
            closed(to);
        }
    }

    /** The client has gone: its request is given up and its answer ended. */
    private void closed(Connection to) {
        leave();
        boolean complete;
        synchronized (this) {
            complete = !completed;
            completed = true;
        }
        if (complete) {
            try {
                to.async.complete();
            } catch (IllegalStateException alreadyEnded) {
                // the container ended it first
            }
        }
    }

    /** The client has gone, or was cut off, or gave up before the first event: its request is given up, once. */
    private void leave() {
        synchronized (this) {
            ended = true;
            events.clear();
            if (left) {
                return;
            }
            left = true;
        }
        gone.run();
    }

    /** The connection of a stream that has begun, and what the container tells of it. */
    private final class Connection implements WriteListener, AsyncListener {

        final AsyncContext async;
        final ServletOutputStream out;

        Connection(AsyncContext async, ServletOutputStream out) {
            this.async = async;
            this.out = out;
        }

        @Override
        public void onWritePossible() {
            write(this);
        }

        @Override
        public void onError(Throwable failure) {
            closed(this);
        }

        @Override
        public void onError(AsyncEvent event) {
            closed(this);
        }

        @Override
        public void onTimeout(AsyncEvent event) {
            closed(this);
        }

        @Override
        public void onComplete(AsyncEvent event) {}

        @Override
        public void onStartAsync(AsyncEvent event) {}
    }

    /**
     * The container's async dispatch of a stream that has begun: the stream takes its connection here, in an async cycle
     * of its own ({@link #writeTo}), and the dispatch goes no further. Spring MVC would render the stream as a body, and
     * write it on the dispatching thread, blocking. Every other dispatch passes.
     */
    @Component
    @Order(Ordered.HIGHEST_PRECEDENCE + 1)
    static class Handover extends OncePerRequestFilter {

        @Override
        protected boolean shouldNotFilterAsyncDispatch() {
            return false;
        }

        @Override
        protected boolean shouldNotFilter(HttpServletRequest request) {
            return request.getDispatcherType() != DispatcherType.ASYNC;
        }

        @Override
        protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
                throws ServletException, IOException {
            if (request.getAttribute(WebAsyncUtils.WEB_ASYNC_MANAGER_ATTRIBUTE) instanceof WebAsyncManager answer
                    && answer.getConcurrentResult() instanceof EventStream stream) {
                answer.clearConcurrentResult();
                // the unwrapped request and response: Spring's wrappers serve its own async cycle, which ends here
                stream.writeTo(request.startAsync());
                return;
            }
            chain.doFilter(request, response);
        }
    }
}
