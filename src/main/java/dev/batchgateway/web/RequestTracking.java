package dev.batchgateway.web;

import dev.batchgateway.budget.Window;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationPredicate;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.server.observation.ServerRequestObservationContext;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;
import org.springframework.web.context.request.RequestAttributes;
import org.springframework.web.filter.OncePerRequestFilter;
import org.springframework.web.servlet.HandlerMapping;

/**
 * Around every request of the API port, whatever its route: gives it its ids, echoes {@code X-Request-Id}, counts its
 * answer in {@code gateway.requests{endpoint, status}} and writes one log line when it fails (successful requests are
 * not logged). The {@code endpoint} is the route ({@code /usage/{user_id}}, not the path), or {@code unmatched}; requests
 * for completions ({@code /complete}, {@code /v1/completions}, {@code /v1/chat/completions}, {@code /v1/responses}) are also timed in
 * {@code gateway.request.duration{endpoint}}.
 *
 * <p>A path with parameters ({@code /complete;x=1}) names no route of the gateway: 404 here, where Spring would
 * otherwise strip them and serve {@code /complete}.
 *
 * <p>Two ids: {@code X-Request-Id} is the caller's correlation id (its own UUID if it sent one, else ours), echoed
 * and logged; the {@code request_id} in the body and the usage row is always the gateway's own, so a caller that
 * reuses an X-Request-Id cannot make two completions share one usage row.
 */
@Component
@Order(Ordered.HIGHEST_PRECEDENCE)
class RequestTracking extends OncePerRequestFilter {

    static final String HEADER = "X-Request-Id";
    static final String USER_ID = RequestTracking.class.getName() + ".userId";
    static final String FAILURE = RequestTracking.class.getName() + ".failure";
    private static final String REQUEST_ID = RequestTracking.class.getName() + ".requestId";
    /** The limit a 429 was over ({@link Failure#limitReason}), counted in {@code gateway.rejections}. */
    private static final String LIMIT = RequestTracking.class.getName() + ".limit";
    private static final Logger LOG = LoggerFactory.getLogger(RequestTracking.class);

    private final MeterRegistry meters;
    /** The paths of requests for completions, each the {@code endpoint} tag of its answers, and timed. */
    private static final java.util.Set<String> ENDPOINTS = java.util.Set.of("/complete", "/v1/completions", "/v1/chat/completions", "/v1/responses",
            "/v1/embeddings");
    /** The {@code endpoint} of answers no route gave (404, or 405 for a method no route takes). */
    static final String UNMATCHED = "unmatched";
    /** {@code gateway.rejections}' description, the same as its 503 series' (observability's BatchingObserver). */
    static final String REJECTIONS =
            "Requests turned away before they were queued: 503 by reason, 429 by the limit they were over or for flex beyond its half of the queue";

    private final Map<String, Counter> byOutcome = new ConcurrentHashMap<>();
    private final Map<String, Timer> durations = new ConcurrentHashMap<>();

    private final Map<String, Counter> byLimit = new ConcurrentHashMap<>();

    RequestTracking(ObjectProvider<MeterRegistry> meters) {
        this.meters = meters.getIfAvailable(SimpleMeterRegistry::new);
        // every limit's series from the start, so that a dashboard shows 0 rather than nothing
        for (Window window : Window.values()) {
            overLimit(window.limitName());
            overLimit(Failure.KEY_LIMIT + window.limitName());
        }
    }

    /** Remembers why a request failed: its message for the log line, and the limit a 429 was over for the metric. */
    static void failed(RequestAttributes request, Failure failure) {
        request.setAttribute(FAILURE, failure.message(), RequestAttributes.SCOPE_REQUEST);
        if (failure.limitReason() instanceof String limit) {
            request.setAttribute(LIMIT, limit, RequestAttributes.SCOPE_REQUEST);
        }
    }

    /**
     * 429s by limit, beside the scheduler's 503s by reason in the same {@code gateway.rejections} (both are requests
     * turned away before they were queued); a key's own limits are reasons of their own, and no user or key is named.
     */
    private Counter overLimit(String limit) {
        return byLimit.computeIfAbsent(limit, reason -> Counter.builder("gateway.rejections")
                .description(REJECTIONS)
                .tag("reason", reason)
                .register(meters));
    }

    /** The gateway's own id of this request, under which its usage is recorded. */
    static UUID requestId(HttpServletRequest request) {
        return request.getAttribute(REQUEST_ID) instanceof UUID id ? id : UUID.randomUUID();
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        long started = System.nanoTime();
        UUID requestId = UUID.randomUUID();
        String correlationId = callersId(request.getHeader(HEADER)).orElse(requestId.toString());
        request.setAttribute(REQUEST_ID, requestId);
        response.setHeader(HEADER, correlationId);
        boolean answerToCome = false;
        try {
            if (request.getRequestURI().indexOf(';') >= 0) {
                notFound(request, response);
            } else {
                chain.doFilter(request, response);
                answerToCome = request.isAsyncStarted();
            }
        } finally {
            if (answerToCome) {
                // an answer waited for without a thread: counted when the container has written it (a stream: its
                // last event, in the async cycle of its own that it starts, EventStream)
                request.getAsyncContext().addListener(new AsyncListener() {
                    @Override
                    public void onComplete(AsyncEvent event) {
                        finished(request, response, requestId, correlationId, started);
                    }

                    @Override
                    public void onTimeout(AsyncEvent event) {}

                    @Override
                    public void onError(AsyncEvent event) {}

                    @Override
                    public void onStartAsync(AsyncEvent event) {
                        event.getAsyncContext().addListener(this); // the container forgets listeners at a new cycle
                    }
                });
            } else {
                finished(request, response, requestId, correlationId, started);
            }
        }
    }

    /**
     * No {@code http.server.requests} observation of the requests tracked here: {@code gateway.requests} and
     * {@code gateway.request.duration} already count and time them, and a second observation of every completion is
     * CPU spent twice on the busiest path. Other paths (usage, admin, health) keep theirs.
     */
    @Component
    static class NoDuplicateObservation implements ObservationPredicate {
        @Override
        public boolean test(String name, Observation.Context context) {
            return !(context instanceof ServerRequestObservationContext server
                    && ENDPOINTS.contains(server.getCarrier().getRequestURI()));
        }
    }

    /** A caller's X-Request-Id is taken when it is a UUID; anything else is ignored (not refused) and replaced. */
    private static java.util.Optional<String> callersId(String header) {
        if (header == null || header.length() != 36) {
            return java.util.Optional.empty();
        }
        try {
            return java.util.Optional.of(UUID.fromString(header).toString());
        } catch (IllegalArgumentException notAUuid) {
            return java.util.Optional.empty();
        }
    }

    private static void notFound(HttpServletRequest request, HttpServletResponse response) throws IOException {
        String detail = "no such path: path parameters (;…) are not part of any route";
        request.setAttribute(FAILURE, detail);
        response.setStatus(HttpServletResponse.SC_NOT_FOUND);
        if (OpenAiAdvice.covers(request.getRequestURI().substring(0, request.getRequestURI().indexOf(';')))) {
            response.setContentType("application/json");
            response.getOutputStream().write(OpenAiAdvice.bytes(
                    new Failure(HttpStatus.NOT_FOUND, detail, null, "invalid_request_error", null, null)));
            return;
        }
        response.setContentType("application/problem+json");
        response.getOutputStream().write(("{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":\""
                + detail + "\"}").getBytes(StandardCharsets.UTF_8));
    }

    /** The route that answered, a bounded set of names (never a raw path, which a client could vary without end). */
    private static String endpoint(HttpServletRequest request) {
        String path = request.getRequestURI();
        if (ENDPOINTS.contains(path)) {
            return path;
        }
        // "/**" is Spring's catch-all for static resources, which the gateway has none of
        return request.getAttribute(HandlerMapping.BEST_MATCHING_PATTERN_ATTRIBUTE) instanceof String route
                && !route.equals("/**") ? route : UNMATCHED;
    }

    private void finished(
            HttpServletRequest request, HttpServletResponse response, UUID requestId, String correlationId, long started) {
        int status = response.getStatus();
        String endpoint = endpoint(request);
        if (ENDPOINTS.contains(endpoint)) {
            durations.computeIfAbsent(endpoint, key -> Timer.builder("gateway.request.duration")
                            .description("Time from a request's arrival to its answer's end (a stream's last event), by endpoint")
                            .tag("endpoint", endpoint)
                            .publishPercentileHistogram()
                            .maximumExpectedValue(Duration.ofMinutes(2))
                            .register(meters))
                    .record(System.nanoTime() - started, TimeUnit.NANOSECONDS);
        }
        byOutcome.computeIfAbsent(endpoint + " " + status, key -> Counter.builder("gateway.requests")
                        .description("Answers of the API port by route (unmatched: no route) and HTTP status")
                        .tag("endpoint", endpoint)
                        .tag("status", Integer.toString(status))
                        .register(meters))
                .increment();
        if (status < 400) {
            return;
        }
        if (status == HttpStatus.TOO_MANY_REQUESTS.value() && request.getAttribute(LIMIT) instanceof String limit) {
            overLimit(limit).increment();
        }
        Object userId = request.getAttribute(USER_ID);
        Object reason = request.getAttribute(FAILURE);
        LOG.atLevel(status >= 500 ? Level.WARN : Level.INFO)
                .addKeyValue("request_id", requestId)
                .addKeyValue("correlation_id", correlationId)
                .addKeyValue("user_id", userId)
                .addKeyValue("status", status)
                .addKeyValue("reason", reason)
                .addKeyValue("endpoint", endpoint)
                .log("request failed: request_id={} correlation_id={} user_id={} endpoint={} status={} reason=\"{}\"",
                        requestId, correlationId, userId, endpoint, status, reason);
    }
}
