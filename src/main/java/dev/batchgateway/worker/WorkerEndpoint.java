package dev.batchgateway.worker;

import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.WorkerException;
import java.io.IOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpTimeoutException;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Executors;
import org.springframework.http.MediaType;
import org.springframework.http.client.JdkClientHttpRequestFactory;
import org.springframework.web.client.RestClient;
import org.springframework.web.client.RestClientException;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * One inference server's HTTP side: a keep-alive HTTP/1.1 client on the JDK {@link HttpClient}, the JSON it sends and
 * reads, and what its failures mean for the callers of a batch.
 *
 * <p>Every call is bounded by the read timeout (which covers the whole answer, body included) and by the connection
 * timeout. An interrupted call is cancelled, which closes its connection; so is a timed-out one.
 */
final class WorkerEndpoint implements AutoCloseable {

    static final JsonMapper JSON = JsonMapper.builder().build();
    /** Health checks answer at once or not at all; they must not hold readiness for a whole worker timeout. */
    private static final Duration HEALTH_TIMEOUT = Duration.ofSeconds(3);

    private final String baseUrl;
    private final Duration readTimeout;
    private final HttpClient http;
    private final RestClient calls;
    private final RestClient health;

    WorkerEndpoint(String baseUrl, Duration connectTimeout, Duration readTimeout) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.readTimeout = readTimeout;
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(connectTimeout)
                // its I/O completions on platform threads, not queued behind request threads (see Scheduler.batches)
                .executor(Executors.newCachedThreadPool(Thread.ofPlatform().daemon().name("worker-http-", 0).factory()))
                .build();
        this.calls = restClient(readTimeout);
        this.health = restClient(readTimeout.compareTo(HEALTH_TIMEOUT) < 0 ? readTimeout : HEALTH_TIMEOUT);
    }

    private RestClient restClient(Duration timeout) {
        var requests = new JdkClientHttpRequestFactory(http);
        requests.setReadTimeout(timeout);
        return RestClient.builder().baseUrl(baseUrl).requestFactory(requests).build();
    }

    String url() {
        return baseUrl;
    }

    /**
     * Posts a JSON body and returns the JSON object the worker answered.
     *
     * @throws WorkerException.Unavailable when the worker cannot be reached
     * @throws WorkerException.TimedOut when it does not answer within the read timeout, or the call is interrupted
     * @throws WorkerException.BadAnswer when it answers an error status, something that is not a JSON object, or
     *     breaks off its answer
     */
    JsonNode post(String path, Object body) {
        byte[] json = JSON.writeValueAsBytes(body);
        try {
            return calls.post().uri(path)
                    .contentType(MediaType.APPLICATION_JSON)
                    .accept(MediaType.APPLICATION_JSON)
                    .body(json)
                    .exchange((request, response) -> {
                        int status = response.getStatusCode().value();
                        if (status < 200 || status > 299) {
                            // the status only: an error body may carry the worker's internals, and it is not ours to pass on
                            throw new WorkerException.BadAnswer("the worker answered HTTP " + status + " to " + path);
                        }
                        return readObject(response.getBody().readAllBytes(), path);
                    });
        } catch (RestClientException e) {
            throw fault(e, path);
        }
    }

    /** Whether GET {@code path} answers 200 with a body that contains {@code expected} (empty: any body). */
    boolean answers(String path, String expected) {
        try {
            return health.get().uri(path).exchange((request, response) -> response.getStatusCode().value() == 200
                    && new String(response.getBody().readAllBytes(), StandardCharsets.UTF_8).contains(expected));
        } catch (RestClientException e) {
            return false;
        }
    }

    private static JsonNode readObject(byte[] body, String path) {
        JsonNode node;
        try {
            node = JSON.readTree(body);
        } catch (JacksonException e) {
            throw new WorkerException.BadAnswer("the worker's answer to " + path + " is not valid JSON", e);
        }
        if (node == null || !node.isObject()) {
            throw new WorkerException.BadAnswer("the worker's answer to " + path + " is not a JSON object");
        }
        return node;
    }

    /** A token count: a non-negative JSON integer. */
    static boolean isCount(JsonNode node) {
        return node != null && node.isIntegralNumber() && node.canConvertToInt() && node.asInt() >= 0;
    }

    /** vLLM's {@code finish_reason} and Ollama's {@code done_reason} use the same words. */
    static FinishReason finishReason(JsonNode reason) {
        return switch (reason == null || !reason.isString() ? "" : reason.asString()) {
            case "stop" -> FinishReason.STOP;
            case "length" -> FinishReason.LENGTH;
            default -> FinishReason.UNKNOWN;
        };
    }

    private WorkerException fault(RestClientException e, String path) {
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
        if (e.getCause() instanceof IOException) {
            return new WorkerException.BadAnswer("the worker broke off its answer to " + path, e);
        }
        return new WorkerException.BadAnswer("the call to " + path + " failed: " + e.getMessage(), e);
    }

    /** Closes the client and its connections; calls in flight are abandoned. */
    @Override
    public void close() {
        http.shutdownNow();
    }
}
