package dev.batchgateway.worker;

import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.WorkerException;
import java.io.BufferedReader;
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
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * One inference server's HTTP side: a keep-alive HTTP/1.1 client on the JDK {@link HttpClient}, the JSON it sends and
 * reads, and what its failures mean for the callers of a batch.
 *
 * <p>Every call is bounded by the read timeout (which covers the whole answer, body included) and by the connection
 * timeout. An interrupted call is cancelled, which closes its connection; so is a timed-out one. Idle connections and
 * the one retry of a call that met a connection the server had just closed are the JDK client's, set up by
 * {@link WorkerConnections}. With an API key, every call carries {@code Authorization: Bearer <key>}.
 */
final class WorkerEndpoint implements AutoCloseable {

    static final JsonMapper JSON = JsonMapper.builder().build();
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

    private final String baseUrl;
    private final String authorization;
    private final Duration readTimeout;
    private final HttpClient http;

    WorkerEndpoint(String baseUrl, Duration connectTimeout, Duration readTimeout) {
        this(baseUrl, null, connectTimeout, readTimeout);
    }

    WorkerEndpoint(String baseUrl, String apiKey, Duration connectTimeout, Duration readTimeout) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.authorization = apiKey == null ? null : "Bearer " + apiKey;
        this.readTimeout = readTimeout;
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(connectTimeout)
                // its I/O completions on the client's own selector thread: an answer's bytes reach the batch's thread
                // in one hand-off, not two, and are not queued behind request threads (see Scheduler.batches)
                .executor(Runnable::run)
                .build();
    }

    String url() {
        return baseUrl;
    }

    /**
     * Posts a JSON body and returns the JSON object (or array) the worker answered.
     *
     * @throws WorkerException.Unavailable when the worker cannot be reached
     * @throws WorkerException.TimedOut when it does not answer within the read timeout, or the call is interrupted
     * @throws ErrorStatus when it answers with a status other than 2xx
     * @throws WorkerException.BadAnswer when it answers something that is not a JSON object or array, or breaks off its
     *     answer
     */
    JsonNode post(String path, Object body) {
        return exchange(path, JSON.writeValueAsBytes(body), "application/json", readTimeout, (status, answer) -> {
            if (status < 200 || status > 299) {
                throw new ErrorStatus(path, status, errorMessage(answer.readNBytes(64 * 1024)));
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
     * @throws WorkerException.BadAnswer when it breaks off its answer
     */
    void stream(String path, Object body, Predicate<String> line) {
        exchange(path, JSON.writeValueAsBytes(body), null, readTimeout, (status, answer) -> {
            if (status < 200 || status > 299) {
                throw new ErrorStatus(path, status, errorMessage(answer.readNBytes(64 * 1024)));
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
            return new Check(0, "", "no answer from " + baseUrl + path + ": " + e.getMessage());
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
     * by then.
     */
    private <T> T exchange(String path, byte[] json, String accept, Duration timeout, Answer<T> answer) {
        var request = HttpRequest.newBuilder(URI.create(baseUrl + path)).timeout(timeout);
        if (json != null) {
            request.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofByteArray(json));
        }
        if (accept != null) {
            request.header("Accept", accept);
        }
        if (authorization != null) {
            request.header("Authorization", authorization);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        HttpResponse<InputStream> response;
        try {
            response = http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new WorkerException.TimedOut("the call to the worker was abandoned", e);
        } catch (IOException e) {
            throw fault(e, path);
        }
        var timedOut = new AtomicBoolean();
        try (InputStream body = response.body()) {
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
        } catch (IOException e) {
            if (timedOut.get()) {
                throw new WorkerException.TimedOut("the worker did not answer within " + timeout.toMillis() + " ms", e);
            }
            throw fault(e, path);
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
        final String path;
        final int status;
        /** The worker's own message, bounded and on one line; empty when it gave none. */
        final String message;

        ErrorStatus(String path, int status, String message) {
            super("the worker answered HTTP " + status + " to " + path, null, false, false);
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
        WorkerException toWorkerException(String url, String model) {
            return switch (status) {
                case 400, 422 -> new WorkerException.Rejected(message.isEmpty() ? "HTTP " + status : message);
                case 401, 403 -> new WorkerException.Misconfigured(refusedKey(url, status));
                case 404 -> new WorkerException.Misconfigured(notServed(url, model, "HTTP 404" + (message.isEmpty() ? "" : " " + message)));
                default -> new WorkerException.BadAnswer(getMessage());
            };
        }
    }

    static String refusedKey(String url, int status) {
        return "the worker at " + url + " refused the gateway's credentials (HTTP " + status + "): check GATEWAY_WORKER_API_KEY";
    }

    static String notServed(String url, String model, String why) {
        return "model " + model + " is not served by " + url + ": " + why;
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

    private static JsonNode readObject(byte[] body, String path) {
        JsonNode node;
        try {
            node = JSON.readTree(body);
        } catch (JacksonException e) {
            throw new WorkerException.BadAnswer("the worker's answer to " + path + " is not valid JSON", e);
        }
        if (node == null || !(node.isObject() || node.isArray())) {
            // an array is llama.cpp's answer to a list of prompts: one complete answer per prompt
            throw new WorkerException.BadAnswer("the worker's answer to " + path + " is not a JSON object or array");
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

    private WorkerException fault(IOException e, String path) {
        if (Thread.currentThread().isInterrupted()) {
            return new WorkerException.TimedOut("the call to the worker was abandoned", e);
        }
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (cause instanceof HttpConnectTimeoutException) {
                return new WorkerException.Unavailable("could not connect to the worker in time", e);
            }
            if (cause instanceof HttpTimeoutException) {
                return new WorkerException.TimedOut("the worker did not answer within " + readTimeout.toMillis() + " ms", e);
            }
            if (cause instanceof ConnectException) {
                return new WorkerException.Unavailable("could not connect to the worker", e);
            }
            if (cause instanceof UnresolvedAddressException || cause instanceof UnknownHostException) {
                return new WorkerException.Unavailable("the worker's host name is unknown", e);
            }
            if (cause instanceof NoRouteToHostException) {
                return new WorkerException.Unavailable("no route to the worker's host", e);
            }
        }
        return new WorkerException.BadAnswer("the worker broke off its answer to " + path, e);
    }

    /** Closes the client and its connections; calls in flight are abandoned. */
    @Override
    public void close() {
        http.shutdownNow();
    }
}
