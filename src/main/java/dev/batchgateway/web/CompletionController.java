package dev.batchgateway.web;

import dev.batchgateway.GatewayProperties;
import dev.batchgateway.budget.Budgets;
import dev.batchgateway.completion.CallerPresence;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.SchedulerApi;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import jakarta.servlet.http.HttpServletRequest;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import tools.jackson.databind.JsonNode;

/** The gateway's HTTP face: {@code POST /complete} and {@code GET /health}. */
@RestController
class CompletionController {

    /** The servlet container's own async timeout is only a safety net behind the scheduler's deadlines. */
    private static final Duration ASYNC_SAFETY_MARGIN = Duration.ofSeconds(10);

    private final SchedulerApi scheduler;
    private final Callers callers;
    private final Budgets budgets;
    private final CompletionRequestReader reader;
    private final long asyncTimeoutMillis;

    CompletionController(SchedulerApi scheduler, GatewayProperties properties, Callers callers, Budgets budgets) {
        this.scheduler = scheduler;
        this.callers = callers;
        this.budgets = budgets;
        this.reader = new CompletionRequestReader(properties.maxPromptChars(), properties.maxTokens(), properties.servedModels());
        this.asyncTimeoutMillis = properties.requestTimeout().plus(ASYNC_SAFETY_MARGIN).toMillis();
    }

    @PostMapping(path = "/complete", consumes = MediaType.APPLICATION_JSON_VALUE, produces = MediaType.APPLICATION_JSON_VALUE)
    DeferredResult<CompletionResponse> complete(
            Caller who,
            @RequestBody JsonNode body,
            @RequestHeader(name = RequestDeadline.HEADER, required = false) String requestTimeout,
            HttpServletRequest http) {
        requireUtf8(http);
        Duration timeout = requestTimeout == null ? ChronoUnit.FOREVER.getDuration() : RequestDeadline.parse(requestTimeout);
        var request = reader.read(body, RequestTracking.requestId(http), named -> callers.billedUser(who, named));
        http.setAttribute(RequestTracking.USER_ID, request.userId());

        // over a limit: 429 here, before the worker sees anything; admitted, it holds a reservation until settled
        budgets.admit(request.userId(), List.of(request));
        var caller = http.getAttribute(ConnectionProbe.ATTRIBUTE) instanceof ConnectionProbe probe ? probe : null;
        CompletableFuture<Completion> completion;
        try {
            completion = scheduler.submit(request, timeout, caller == null ? CallerPresence.ASSUMED : caller);
        } catch (RuntimeException notTaken) {
            budgets.release(request);
            throw notTaken;
        }
        var response = new DeferredResult<CompletionResponse>(asyncTimeoutMillis);
        // a caller that is gone no longer needs its request sent to the worker
        response.onError(failure -> completion.cancel(false));
        response.onTimeout(() -> completion.cancel(false));
        completion.whenComplete((done, failure) -> {
            if (caller != null) {
                caller.answered(); // from here on the connection belongs to the container again
            }
            if (failure == null) {
                response.setResult(CompletionResponse.of(done));
            } else if (failure instanceof CancellationException) {
                response.setErrorResult(new CallerGoneException());
            } else {
                response.setErrorResult(failure instanceof CompletionException wrapped && wrapped.getCause() != null
                        ? wrapped.getCause()
                        : failure);
            }
        });
        return response;
    }

    @GetMapping(path = "/health", produces = MediaType.TEXT_PLAIN_VALUE)
    String health() {
        return "ok";
    }

    /** JSON is UTF-8 (RFC 8259); another declared charset would make Jackson decode bytes without checking them. */
    private static void requireUtf8(HttpServletRequest http) {
        // the mapping's consumes has already parsed the Content-Type, so this cannot fail on syntax
        String declared = MediaType.parseMediaType(http.getContentType()).getParameter("charset");
        if (declared == null) {
            return;
        }
        boolean utf8;
        try {
            utf8 = Charset.forName(declared.replace("\"", "")).equals(StandardCharsets.UTF_8);
        } catch (IllegalArgumentException unknown) {
            utf8 = false;
        }
        if (!utf8) {
            throw new UnsupportedCharsetException(declared);
        }
    }
}
