package dev.batchgateway.worker;

import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.WorkerException;
import java.io.BufferedReader;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.URI;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * One inference server's HTTP side: a keep-alive HTTP/1.1 client on the JDK {@link HttpClient}, the JSON it sends and
 * reads, and what its failures mean for the callers of a batch.
 *
 * <p>Every call is bounded by the read timeout (which covers the whole answer, body included), by the connection
 * timeout, and by the size of its answer: more than {@code maxAnswerBytes} (GATEWAY_WORKER_MAX_ANSWER_BYTES) fails the
 * call as a bad answer, and no more than that is ever read. An interrupted call is cancelled, which closes its
 * connection; so is a timed-out or oversized one. With an API key, every call carries
 * {@code Authorization: Bearer <key>}.
 *
 * <p>A call is sent once. Only a call that provably never left is tried again: a refused connection (the JDK client
 * connects once more), and a call whose connection ended before the client took the bytes of its body (a kept-alive
 * connection the server closed as idle just as the call picked it up), which is sent once more on a fresh connection;
 * a connection the server closed while it sat idle is dropped by the JDK before any call is written to it. A
 * connection lost once the body was taken is a broken-off answer, never re-sent: the worker may have received the batch
 * and generated it ({@link WorkerConnections} keeps the JDK's own re-send of such POSTs off).
 *
 * <p>What reaches callers names the worker by its {@link #name()} ("worker 2"), never by its URL, which may be an
 * internal address; the gateway's log names both.
 */
final class WorkerEndpoint implements AutoCloseable {

    static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Logger LOG = LoggerFactory.getLogger(WorkerEndpoint.class);
    /**
     * Health checks answer at once or not at all: they must not hold readiness for a whole worker timeout, and a batch
     * that waits for the probe of a worker that was out must learn within about a second whether it can be sent.
     */
    private static final Duration HEALTH_TIMEOUT = Duration.ofSeconds(1);
    /** The most of a worker's error message that reaches a caller or a log line. */
    private static final int EXCERPT_CHARS = 300;
    /**
     * Closes the body of an answer still being read at its deadline. A call that ends in time cancels its deadline, which
     * leaves the queue at once (not after the whole read timeout, as a {@code CompletableFuture.delayedExecutor} task
     * would, holding the call's stream all that while).
     */
    private static final ScheduledThreadPoolExecutor DEADLINES = deadlines();

    private static ScheduledThreadPoolExecutor deadlines() {
        var deadlines = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon().name("worker-deadlines").factory());
        deadlines.setRemoveOnCancelPolicy(true);
        return deadlines;
    }

    /** The answer cap of an endpoint built without one (tests): far above any answer they expect. */
    static final long DEFAULT_MAX_ANSWER_BYTES = 64L * 1024 * 1024;

    private final String name;
    private final String baseUrl;
    private final String authorization;
    private final Duration readTimeout;
    private final long maxAnswerBytes;
    private final HttpClient http;

    /** A lone worker, "worker 1", without a key, with the default answer cap. */
    WorkerEndpoint(String baseUrl, Duration connectTimeout, Duration readTimeout) {
        this(baseUrl, null, connectTimeout, readTimeout);
    }

    /** A lone worker, "worker 1", with the default answer cap. */
    WorkerEndpoint(String baseUrl, String apiKey, Duration connectTimeout, Duration readTimeout) {
        this("worker 1", baseUrl, apiKey, connectTimeout, readTimeout, DEFAULT_MAX_ANSWER_BYTES);
    }

    /**
     * @param name what callers and readiness call this worker, e.g. "worker 2" (never its URL)
     * @param maxAnswerBytes the most of an answer that is read; a longer answer fails its call as a bad answer
     */
    WorkerEndpoint(String name, String baseUrl, String apiKey, Duration connectTimeout, Duration readTimeout, long maxAnswerBytes) {
        this(name, baseUrl, apiKey, readTimeout, maxAnswerBytes, client(connectTimeout));
    }

    /** On a given HTTP client: tests put one in front of the JDK's that fails the way the JDK fails. */
    WorkerEndpoint(String name, String baseUrl, String apiKey, Duration readTimeout, long maxAnswerBytes, HttpClient http) {
        if (maxAnswerBytes < 1) {
            throw new IllegalArgumentException("the answer cap must be at least a byte, was " + maxAnswerBytes);
        }
        this.name = name;
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.authorization = apiKey == null ? null : "Bearer " + apiKey;
        this.readTimeout = readTimeout;
        this.maxAnswerBytes = maxAnswerBytes;
        this.http = http;
    }

    /** The JDK client of one worker: HTTP/1.1, kept-alive connections. */
    static HttpClient client(Duration connectTimeout) {
        return HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(connectTimeout)
                // its I/O completions on the client's own selector thread: an answer's bytes reach the batch's thread
                // in one hand-off, not two, and are not queued behind request threads (see Scheduler.batches)
                .executor(Runnable::run)
                .build();
    }

    /** The server's base URL: for logs and the operator's views only, never for what callers read. */
    String url() {
        return baseUrl;
    }

    /** What callers read for this worker: "worker 2", its place in its model's list of URLs. */
    String name() {
        return name;
    }

    /**
     * Posts a JSON body and returns the JSON object (or array) the worker answered.
     *
     * @throws WorkerException.Unavailable when the worker cannot be reached
     * @throws WorkerException.TimedOut when it does not answer within the read timeout, or the call is interrupted
     * @throws ErrorStatus when it answers with a status other than 2xx
     * @throws WorkerException.BadAnswer when it answers something that is not a JSON object or array, an answer larger
     *     than the cap, or breaks off its answer (also once the call was sent: it is never sent again)
     */
    JsonNode post(String path, Object body) {
        return exchange(path, JSON.writeValueAsBytes(body), "application/json", readTimeout, (status, answer) -> {
            if (status < 200 || status > 299) {
                throw new ErrorStatus(name, path, status, errorMessage(answer.readNBytes(64 * 1024)));
            }
            return readObject(answer.readAllBytes(), path);
        });
    }

    /**
     * Posts a JSON body whose answer is a stream of lines (server-sent events, or Ollama's JSON lines), and hands each
     * line to {@code line} as it arrives, until the answer ends or {@code line} returns false (nobody needs the rest:
     * the call is then closed, which tells the server to stop generating).
     *
     * @throws WorkerException.Unavailable when the worker cannot be reached
     * @throws WorkerException.TimedOut when it does not answer within the read timeout, or the call is interrupted
     * @throws ErrorStatus when it answers with a status other than 2xx, before any line
     * @throws WorkerException.BadAnswer when it breaks off its answer, or streams more than the cap in all
     */
    void stream(String path, Object body, Predicate<String> line) {
        exchange(path, JSON.writeValueAsBytes(body), null, readTimeout, (status, answer) -> {
            if (status < 200 || status > 299) {
                throw new ErrorStatus(name, path, status, errorMessage(answer.readNBytes(64 * 1024)));
            }
            var lines = new BufferedReader(new InputStreamReader(answer, StandardCharsets.UTF_8));
            for (String next = lines.readLine(); next != null; next = lines.readLine()) {
                if (!line.test(next)) {
                    break;
                }
            }
            return null;
        });
    }

    /**
     * A health check: GET {@code path}, or POST it with a JSON body when {@code body} is not null, bounded by the health
     * timeout. Never throws: a call that got no answer is a {@link Check} with status 0 and the reason.
     */
    Check check(String path, Object body) {
        Duration timeout = readTimeout.compareTo(HEALTH_TIMEOUT) < 0 ? readTimeout : HEALTH_TIMEOUT;
        try {
            return exchange(path, body == null ? null : JSON.writeValueAsBytes(body), null, timeout, (status, answer) ->
                    new Check(status, new String(answer.readNBytes(1024 * 1024), StandardCharsets.UTF_8), null));
        } catch (WorkerException e) {
            return new Check(0, "", "no answer to " + path + ": " + e.getMessage());
        }
    }

    /** Reads a worker's answer: its status and its body, as it arrives. */
    @FunctionalInterface
    private interface Answer<T> {
        T read(int status, InputStream body) throws IOException;
    }

    /**
     * One call on the JDK client itself (a body of bytes, no hand-off to a writer thread): POST {@code json}, or GET when
     * it is null, with {@code accept} as its Accept header when given. {@code timeout} bounds the whole answer: the
     * client's own request timeout until the status line, then a deadline that closes the body if it has not been read
     * by then. The body is read through the answer cap: a declared length above it fails at once, unread, and a body
     * that grows past it fails as soon as it does.
     */
    private <T> T exchange(String path, byte[] json, String accept, Duration timeout, Answer<T> answer) {
        long deadline = System.nanoTime() + timeout.toNanos();
        HttpResponse<InputStream> response = null;
        for (int attempt = 1; response == null; attempt++) {
            var body = json == null ? null : new TrackedBody(json);
            try {
                response = http.send(request(path, body, accept, deadline), HttpResponse.BodyHandlers.ofInputStream());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new WorkerException.TimedOut("the call to " + name + " was abandoned", e);
            } catch (IOException e) {
                WorkerException failure = fault(e, path, timeout);
                if (body == null || body.taken() || !(failure instanceof WorkerException.BadAnswer)) {
                    throw failure; // a GET the JDK already tried again, or a call that may have reached the worker
                }
                // the connection ended before the client took the body: the worker cannot have the call
                if (attempt == 2) {
                    throw new WorkerException.Unavailable(name + " closed the connection before the call to " + path
                            + " was sent, twice", e);
                }
                LOG.debug("the connection to {} ended before the call to {} was sent; sending it on a fresh one", baseUrl, path, e);
            }
        }
        var timedOut = new AtomicBoolean();
        long declared = response.headers().firstValueAsLong("Content-Length").orElse(-1);
        try (InputStream body = new CappedBody(response.body(), maxAnswerBytes, declared)) {
            if (declared > maxAnswerBytes) {
                throw new AnswerTooLarge();
            }
            ScheduledFuture<?> timer = DEADLINES.schedule(() -> {
                timedOut.set(true);
                try {
                    body.close(); // cancels the exchange: the read under way fails, the connection is closed
                } catch (IOException ignored) {
                    // closing a response body does not fail
                }
            }, deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
            try {
                return answer.read(response.statusCode(), body);
            } finally {
                timer.cancel(false);
            }
        } catch (AnswerTooLarge e) {
            throw new WorkerException.BadAnswer(name + "'s answer to " + path + " is larger than " + maxAnswerBytes
                    + " bytes (GATEWAY_WORKER_MAX_ANSWER_BYTES)", e);
        } catch (IOException e) {
            if (timedOut.get()) {
                throw new WorkerException.TimedOut(name + " did not answer within " + timeout.toMillis() + " ms", e);
            }
            throw fault(e, path, timeout);
        }
    }

    private HttpRequest request(String path, TrackedBody body, String accept, long deadline) {
        // a second attempt has what is left of the call's time
        var request = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(Duration.ofNanos(Math.max(TimeUnit.MILLISECONDS.toNanos(1), deadline - System.nanoTime())));
        if (body != null) {
            request.header("Content-Type", "application/json").POST(body);
        }
        if (accept != null) {
            request.header("Accept", accept);
        }
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        return request.build();
    }

    /**
     * A call's JSON body that notes when the client takes its bytes to write them. The JDK takes them only once the
     * request's headers are written, so a call that failed before they were taken provably never reached the worker.
     */
    private static final class TrackedBody implements HttpRequest.BodyPublisher {

        private final HttpRequest.BodyPublisher bytes;
        private volatile boolean taken;

        TrackedBody(byte[] json) {
            this.bytes = HttpRequest.BodyPublishers.ofByteArray(json);
        }

        boolean taken() {
            return taken;
        }

        @Override
        public long contentLength() {
            return bytes.contentLength();
        }

        @Override
        public void subscribe(Flow.Subscriber<? super ByteBuffer> writer) {
            bytes.subscribe(new Flow.Subscriber<ByteBuffer>() {
                @Override
                public void onSubscribe(Flow.Subscription subscription) {
                    writer.onSubscribe(subscription);
                }

                @Override
                public void onNext(ByteBuffer item) {
                    taken = true;
                    writer.onNext(item);
                }

                @Override
                public void onError(Throwable failure) {
                    writer.onError(failure);
                }

                @Override
                public void onComplete() {
                    writer.onComplete();
                }
            });
        }
    }

    /** An answer's body read no further than the cap: the byte after it fails the read with {@link AnswerTooLarge}. */
    private static final class CappedBody extends FilterInputStream {

        private long left;
        /** The answer's Content-Length, or -1 when it has none (chunked). */
        private final long declared;

        CappedBody(InputStream body, long cap, long declared) {
            super(body);
            this.left = cap;
            this.declared = declared;
        }

        /**
         * Reads an answer of a declared length into an array of that length: the JDK's way, without a length, starts
         * with a 16 KiB buffer and copies, which was most of the garbage a completion made. It then waits for the body's
         * end (the client ends it at its Content-Length): a body closed before the client saw its end closes the
         * connection instead of keeping it alive (90 of 300 batches went on a fresh connection without this).
         */
        @Override
        public byte[] readAllBytes() throws IOException {
            if (declared < 0 || declared > Integer.MAX_VALUE - 8) {
                return super.readAllBytes();
            }
            byte[] answer = readNBytes((int) declared);
            read(); // -1, the body's end: only then does the client keep the connection
            return answer;
        }

        @Override
        public int read() throws IOException {
            int read = super.read();
            if (read >= 0) {
                count(1);
            }
            return read;
        }

        @Override
        public int read(byte[] buffer, int offset, int length) throws IOException {
            // never asks for more than one byte past the cap: nothing beyond it is taken in
            int read = super.read(buffer, offset, (int) Math.min(length, left + 1));
            if (read > 0) {
                count(read);
            }
            return read;
        }

        @Override
        public long skip(long bytes) throws IOException {
            long skipped = super.skip(Math.min(bytes, left + 1));
            count(skipped);
            return skipped;
        }

        private void count(long read) throws AnswerTooLarge {
            left -= read;
            if (left < 0) {
                throw new AnswerTooLarge();
            }
        }
    }

    /** The worker's answer is larger than the cap. */
    private static final class AnswerTooLarge extends IOException {
        AnswerTooLarge() {
            super("the answer is larger than the cap", null);
        }
    }

    /** What a health check got: the status and body, or status 0 and why there was no answer. */
    record Check(int status, String body, String failure) {

        boolean ok() {
            return status >= 200 && status <= 299;
        }

        /** The body as JSON, or null when it is not JSON. */
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (JacksonException e) {
                return null;
            }
        }

        /** The worker's own error message, as {@link #errorMessage} reads it. */
        String message() {
            return errorMessage(body.getBytes(StandardCharsets.UTF_8));
        }
    }

    /**
     * The worker answered a call with an error status. The adapters turn it into what it means for the callers:
     * {@link #toWorkerException()}, or a retry of the prompts one by one.
     */
    static final class ErrorStatus extends RuntimeException {
        final String worker;
        final String path;
        final int status;
        /** The worker's own message, bounded and on one line; empty when it gave none. */
        final String message;

        ErrorStatus(String worker, String path, int status, String message) {
            super(worker + " answered HTTP " + status + " to " + path, null, false, false);
            this.worker = worker;
            this.path = path;
            this.status = status;
            this.message = message;
        }

        boolean isClientError() {
            return status == 400 || status == 422;
        }

        /**
         * What the status means: 400/422 the request was refused (the caller's fault); 401/403 a key the worker does not
         * accept and 404 a model it does not serve (the gateway's set-up, not the caller's); anything else a bad
         * answer, with the status only (a 5xx body may carry the worker's internals).
         */
        WorkerException toWorkerException(String model) {
            return switch (status) {
                case 400, 422 -> new WorkerException.Rejected(message.isEmpty() ? "HTTP " + status : message);
                case 401, 403 -> new WorkerException.Misconfigured(refusedKey(worker, status));
                case 404 -> new WorkerException.Misconfigured(notServed(worker, model, "HTTP 404" + (message.isEmpty() ? "" : " " + message)));
                default -> new WorkerException.BadAnswer(getMessage());
            };
        }
    }

    /** @param worker the worker's {@link #name()} */
    static String refusedKey(String worker, int status) {
        return worker + " refused the gateway's credentials (HTTP " + status + "): check GATEWAY_WORKER_API_KEY";
    }

    /** @param worker the worker's {@link #name()} */
    static String notServed(String worker, String model, String why) {
        return "model " + model + " is not served by " + worker + ": " + why;
    }

    /**
     * The message of an error body, in the shapes vLLM and Ollama use: {@code {"error": {"message": …}}} (vLLM 0.10.1
     * and later, OpenAI), {@code {"object": "error", "message": …}} (older vLLM), {@code {"error": "…"}} (Ollama, and
     * vLLM's API-key check). One line, at most {@value #EXCERPT_CHARS} characters; empty when there is none.
     */
    static String errorMessage(byte[] body) {
        JsonNode json;
        try {
            json = JSON.readTree(body);
        } catch (JacksonException e) {
            return "";
        }
        if (json == null || !json.isObject()) {
            return "";
        }
        JsonNode error = json.get("error");
        JsonNode message = error != null && error.isObject() ? error.get("message")
                : error != null && error.isString() ? error
                : json.get("message");
        if (message == null || !message.isString()) {
            return "";
        }
        String line = message.asString().replaceAll("\\s+", " ").strip();
        return line.length() <= EXCERPT_CHARS ? line : line.substring(0, EXCERPT_CHARS) + "…";
    }

    private JsonNode readObject(byte[] body, String path) {
        JsonNode node;
        try {
            node = JSON.readTree(body);
        } catch (JacksonException e) {
            throw new WorkerException.BadAnswer(name + "'s answer to " + path + " is not valid JSON", e);
        }
        if (node == null || !(node.isObject() || node.isArray())) {
            // an array is llama.cpp's answer to a list of prompts: one complete answer per prompt
            throw new WorkerException.BadAnswer(name + "'s answer to " + path + " is not a JSON object or array");
        }
        return node;
    }

    /** A token count: a non-negative JSON integer. */
    static boolean isCount(JsonNode node) {
        return node != null && node.isIntegralNumber() && node.canConvertToInt() && node.asInt() >= 0;
    }

    /**
     * vLLM's {@code finish_reason} and Ollama's {@code done_reason} use the same words: stop, length, and vLLM's abort
     * and repetition. Ollama's load and unload (an empty prompt) and anything new are unknown.
     */
    static FinishReason finishReason(JsonNode reason) {
        return switch (reason == null || !reason.isString() ? "" : reason.asString()) {
            case "stop" -> FinishReason.STOP;
            case "length" -> FinishReason.LENGTH;
            case "abort" -> FinishReason.ABORT;
            case "repetition" -> FinishReason.REPETITION;
            default -> FinishReason.UNKNOWN;
        };
    }

    /**
     * What a failed call means. Unavailable only where nothing was sent: the connection was refused, not made in time,
     * or its host not found. Anything else after the call was written, an answer cut off before its first byte
     * included, is a broken-off answer: the worker may have done the work, so the call is not sent again.
     */
    private WorkerException fault(IOException e, String path, Duration timeout) {
        if (Thread.currentThread().isInterrupted()) {
            return new WorkerException.TimedOut("the call to " + name + " was abandoned", e);
        }
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (cause instanceof HttpConnectTimeoutException) {
                return new WorkerException.Unavailable("could not connect to " + name + " in time", e);
            }
            if (cause instanceof HttpTimeoutException) {
                return new WorkerException.TimedOut(name + " did not answer within " + timeout.toMillis() + " ms", e);
            }
            if (cause instanceof ConnectException) {
                return new WorkerException.Unavailable("could not connect to " + name, e);
            }
            if (cause instanceof UnresolvedAddressException || cause instanceof UnknownHostException) {
                return new WorkerException.Unavailable(name + "'s host name is unknown", e);
            }
            if (cause instanceof NoRouteToHostException) {
                return new WorkerException.Unavailable("no route to " + name + "'s host", e);
            }
        }
        return new WorkerException.BadAnswer(name + " broke off its answer to " + path, e);
    }

    /** Closes the client and its connections; calls in flight are abandoned. */
    @Override
    public void close() {
        http.shutdownNow();
    }
}
