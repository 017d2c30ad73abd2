package dev.batchgateway.web;

import dev.batchgateway.budget.BudgetUnavailableException;
import dev.batchgateway.budget.LimitExceededException;
import dev.batchgateway.budget.Window;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.DeadlineExceededException;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.identity.KeyStoreUnavailableException;
import dev.batchgateway.identity.ModelNotAllowedException;
import dev.batchgateway.identity.NotAllowedException;
import dev.batchgateway.identity.NotAuthenticatedException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.HttpRequestMethodNotSupportedException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;

/**
 * Every failure of the OpenAI-compatible API in OpenAI's error shape, {@code {"error": {"message", "type", "param",
 * "code"}}}, with OpenAI's statuses, so that the SDKs raise their own exception types; never a stack trace. Comes
 * before {@link ProblemAdvice}, which keeps answering {@code /complete} in problem+json.
 */
@Order(Ordered.HIGHEST_PRECEDENCE)
@RestControllerAdvice(assignableTypes = OpenAiController.class)
class OpenAiAdvice {

    private static final Logger LOG = LoggerFactory.getLogger(OpenAiAdvice.class);
    private static final Duration WORKER_RETRY_AFTER = Duration.ofSeconds(5);
    private static final int CLIENT_CLOSED_REQUEST = 499;

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> refused(OpenAiError e) {
        return error(e.status, e.getMessage(), e.type, e.param, e.code, null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> unreadable(HttpMessageNotReadableException e) {
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (cause instanceof BodyTimeoutException late) {
                var timedOut = error(HttpStatus.REQUEST_TIMEOUT, late.getMessage(), "invalid_request_error", null, null, null);
                return ResponseEntity.status(timedOut.getStatusCode()).headers(timedOut.getHeaders())
                        .header(HttpHeaders.CONNECTION, "close").body(timedOut.getBody());
            }
        }
        String detail = e.getCause() instanceof BodyTooLargeException tooLarge ? tooLarge.getMessage()
                : e.getCause() instanceof Utf8JsonBody.InvalidUtf8Exception notUtf8 ? notUtf8.getMessage()
                : "We could not parse the JSON body of your request.";
        HttpStatus status = e.getCause() instanceof BodyTooLargeException ? HttpStatus.CONTENT_TOO_LARGE : HttpStatus.BAD_REQUEST;
        return error(status, detail, "invalid_request_error", null, null, null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> notJson(Utf8JsonBody.UnsupportedMediaType e) {
        return error(HttpStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as JSON, with Content-Type: application/json",
                "invalid_request_error", null, null, null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> notUtf8(UnsupportedCharsetException e) {
        return error(HttpStatus.UNSUPPORTED_MEDIA_TYPE, e.getMessage(), "invalid_request_error", null, null, null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> mediaType(HttpMediaTypeNotSupportedException e) {
        return error(HttpStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as JSON, with Content-Type: application/json",
                "invalid_request_error", null, null, null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> method(HttpRequestMethodNotSupportedException e) {
        return error(HttpStatus.METHOD_NOT_ALLOWED, e.getMethod() + " is not allowed here", "invalid_request_error", null, null, null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> rejected(CompletionRejectedException e) {
        if (e.tooManyRequests()) {
            return error(HttpStatus.TOO_MANY_REQUESTS, e.getMessage(), "requests", null, "rate_limit_exceeded", e.retryAfter());
        }
        return error(HttpStatus.SERVICE_UNAVAILABLE, e.getMessage(), "server_error", null, null, e.retryAfter());
    }

    /**
     * OpenAI's 429s, which the SDKs raise as their RateLimitError: {@code rate_limit_exceeded} for the per-minute and
     * per-day limits (rate limits, as OpenAI's own RPM and TPD), {@code insufficient_quota} for the monthly budget;
     * with the limit's name, what remains and when it resets beside OpenAI's fields.
     */
    @ExceptionHandler
    ResponseEntity<Map<String, Object>> overLimit(LimitExceededException e) {
        boolean quota = e.window() == Window.MONTH;
        Map<String, Object> limit = new LinkedHashMap<>();
        limit.put("limit", e.window().limitName());
        limit.put("limit_scope", e.scope());
        limit.put("limit_value", e.limit());
        limit.put("remaining", e.remaining());
        limit.put("requested", e.requested());
        limit.put("resets_at", e.resetsAt().toString());
        return error(HttpStatus.TOO_MANY_REQUESTS, e.getMessage(),
                quota ? "insufficient_quota" : e.window().countsRequests() ? "requests" : "tokens", null,
                quota ? "insufficient_quota" : "rate_limit_exceeded", e.retryAfter(), limit);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> budgetAway(BudgetUnavailableException e) {
        return error(HttpStatus.SERVICE_UNAVAILABLE, e.getMessage(), "server_error", null, null, e.retryAfter());
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> deadline(DeadlineExceededException e) {
        return error(HttpStatus.GATEWAY_TIMEOUT, e.getMessage(), "timeout", null, null, null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> worker(WorkerException e) {
        return switch (e) {
            case WorkerException.Unavailable unavailable -> error(HttpStatus.SERVICE_UNAVAILABLE,
                    "the worker is unavailable: " + unavailable.getMessage(), "server_error", null, null, WORKER_RETRY_AFTER);
            case WorkerException.TimedOut timedOut -> error(HttpStatus.GATEWAY_TIMEOUT, timedOut.getMessage(), "timeout", null, null, null);
            case WorkerException.BadAnswer badAnswer ->
                    error(HttpStatus.BAD_GATEWAY, "the worker failed: " + badAnswer.getMessage(), "server_error", null, null, null);
            case WorkerException.Rejected rejected -> error(HttpStatus.BAD_REQUEST,
                    "the worker refused this request: " + rejected.getMessage(), "invalid_request_error", "prompt", null, null);
            case WorkerException.Misconfigured misconfigured -> error(HttpStatus.BAD_GATEWAY,
                    "the worker is misconfigured: " + misconfigured.getMessage(), "server_error", null, null, null);
        };
    }

    /** Nobody reads this answer; the status (nginx's "client closed request") only shows in metrics and logs. */
    @ExceptionHandler
    ResponseEntity<Map<String, Object>> callerGone(CallerGoneException e) {
        return error(HttpStatusCode.valueOf(CLIENT_CLOSED_REQUEST), e.getMessage(), "client_closed_request", null, null, null);
    }

    /** OpenAI's own answer to a missing or wrong key, so that the SDKs raise their AuthenticationError. */
    @ExceptionHandler
    ResponseEntity<Map<String, Object>> notAuthenticated(NotAuthenticatedException e) {
        var response = error(HttpStatus.UNAUTHORIZED, e.getMessage(), "invalid_request_error", null, "invalid_api_key", null);
        return ResponseEntity.status(response.getStatusCode())
                .headers(headers -> {
                    headers.addAll(response.getHeaders());
                    headers.set(HttpHeaders.WWW_AUTHENTICATE, ProblemAdvice.BEARER_CHALLENGE);
                })
                .body(response.getBody());
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> notAllowed(NotAllowedException e) {
        return error(HttpStatus.FORBIDDEN, e.getMessage(), "invalid_request_error", null, "permission_denied", null);
    }

    /** A key issued for other models: 403 naming the model, in {@code param} too. */
    @ExceptionHandler
    ResponseEntity<Map<String, Object>> modelNotAllowed(ModelNotAllowedException e) {
        return error(HttpStatus.FORBIDDEN, e.getMessage(), "invalid_request_error", "model", "model_not_allowed", null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> keyStoreAway(KeyStoreUnavailableException e) {
        return error(HttpStatus.SERVICE_UNAVAILABLE, "the key store is unavailable; try again later", "server_error", null, null,
                ProblemAdvice.KEY_STORE_RETRY_AFTER);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> unexpected(Exception e) {
        LOG.error("unexpected failure while handling an OpenAI API request", e);
        return error(HttpStatus.INTERNAL_SERVER_ERROR, "internal error; the gateway's log has the details", "server_error",
                null, null, null);
    }

    private static ResponseEntity<Map<String, Object>> error(
            HttpStatusCode status, String message, String type, String param, String code, Duration retryAfter) {
        return error(status, message, type, param, code, retryAfter, Map.of());
    }

    private static ResponseEntity<Map<String, Object>> error(HttpStatusCode status, String message, String type,
            String param, String code, Duration retryAfter, Map<String, Object> more) {
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("message", message);
        error.put("type", type);
        error.put("param", param);
        error.put("code", code);
        error.putAll(more);
        if (org.springframework.web.context.request.RequestContextHolder.getRequestAttributes() instanceof
                org.springframework.web.context.request.RequestAttributes request) {
            request.setAttribute(RequestTracking.FAILURE, message, org.springframework.web.context.request.RequestAttributes.SCOPE_REQUEST);
        }
        var response = ResponseEntity.status(status).contentType(MediaType.APPLICATION_JSON);
        if (retryAfter != null) {
            response.header(HttpHeaders.RETRY_AFTER, Long.toString(Math.max(1, retryAfter.toSeconds())));
        }
        return response.body(Map.of("error", error));
    }
}
