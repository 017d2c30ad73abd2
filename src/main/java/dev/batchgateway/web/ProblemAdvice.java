package dev.batchgateway.web;

import dev.batchgateway.budget.BudgetUnavailableException;
import dev.batchgateway.budget.LimitExceededException;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.DeadlineExceededException;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.identity.AuditUnavailableException;
import dev.batchgateway.identity.KeyStoreUnavailableException;
import dev.batchgateway.identity.NotAllowedException;
import dev.batchgateway.identity.NotAuthenticatedException;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.context.request.RequestAttributes;
import org.springframework.web.context.request.RequestContextHolder;
import org.springframework.web.context.request.WebRequest;
import org.springframework.web.servlet.mvc.method.annotation.ResponseEntityExceptionHandler;

/**
 * The only place that knows HTTP status codes: every failure becomes {@code application/problem+json} (RFC 9457),
 * with a detail that says what to fix and never a stack trace.
 */
@RestControllerAdvice
class ProblemAdvice extends ResponseEntityExceptionHandler {

    private static final Logger LOG = LoggerFactory.getLogger(ProblemAdvice.class);
    private static final Duration WORKER_RETRY_AFTER = Duration.ofSeconds(5);
    private static final int CLIENT_CLOSED_REQUEST = 499;

    /** The challenge of every 401 (RFC 6750). */
    static final String BEARER_CHALLENGE = "Bearer realm=\"batch-gateway\"";
    static final Duration KEY_STORE_RETRY_AFTER = Duration.ofSeconds(5);

    /** Missing, malformed, unknown or revoked: one answer for all, so it tells nobody which keys exist. */
    @ExceptionHandler
    ResponseEntity<ProblemDetail> notAuthenticated(NotAuthenticatedException e) {
        RequestContextHolder.currentRequestAttributes()
                .setAttribute(RequestTracking.FAILURE, e.getMessage(), RequestAttributes.SCOPE_REQUEST);
        return ResponseEntity.status(HttpStatus.UNAUTHORIZED)
                .header(HttpHeaders.WWW_AUTHENTICATE, BEARER_CHALLENGE)
                .body(ProblemDetail.forStatusAndDetail(HttpStatus.UNAUTHORIZED, e.getMessage()));
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> notAllowed(NotAllowedException e) {
        return problem(HttpStatus.FORBIDDEN, e.getMessage(), null);
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> keyStoreAway(KeyStoreUnavailableException e) {
        return problem(HttpStatus.SERVICE_UNAVAILABLE, "the key store is unavailable; try again later", KEY_STORE_RETRY_AFTER);
    }

    /** An admin change is not made without its audit entry. */
    @ExceptionHandler
    ResponseEntity<ProblemDetail> auditAway(AuditUnavailableException e) {
        return problem(HttpStatus.SERVICE_UNAVAILABLE, e.getMessage(), KEY_STORE_RETRY_AFTER);
    }

    /** Over a user's limit: which limit, what remains of it, when it resets, and when to try again. */
    @ExceptionHandler
    ResponseEntity<ProblemDetail> overLimit(LimitExceededException e) {
        var response = problem(HttpStatus.TOO_MANY_REQUESTS, e.getMessage(), e.retryAfter());
        ProblemDetail problem = response.getBody();
        problem.setProperty("limit", e.window().limitName());
        problem.setProperty("limit_scope", e.scope());
        problem.setProperty("limit_value", e.limit());
        problem.setProperty("remaining", e.remaining());
        problem.setProperty("requested", e.requested());
        problem.setProperty("resets_at", e.resetsAt().toString());
        return response;
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> budgetAway(BudgetUnavailableException e) {
        return problem(HttpStatus.SERVICE_UNAVAILABLE, e.getMessage(), e.retryAfter());
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> invalid(InvalidRequestException e) {
        return problem(HttpStatus.BAD_REQUEST, e.getMessage(), null);
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> rejected(CompletionRejectedException e) {
        HttpStatus status = e.tooManyRequests() ? HttpStatus.TOO_MANY_REQUESTS : HttpStatus.SERVICE_UNAVAILABLE;
        return problem(status, e.getMessage(), e.retryAfter());
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> deadline(DeadlineExceededException e) {
        return problem(HttpStatus.GATEWAY_TIMEOUT, e.getMessage(), null);
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> worker(WorkerException e) {
        return switch (e) {
            case WorkerException.Unavailable unavailable ->
                    problem(HttpStatus.SERVICE_UNAVAILABLE, "the worker is unavailable: " + unavailable.getMessage(), WORKER_RETRY_AFTER);
            case WorkerException.TimedOut timedOut -> problem(HttpStatus.GATEWAY_TIMEOUT, timedOut.getMessage(), null);
            case WorkerException.BadAnswer badAnswer ->
                    problem(HttpStatus.BAD_GATEWAY, "the worker failed: " + badAnswer.getMessage(), null);
            // the caller's own prompt was refused (e.g. longer than the model's context): theirs to fix
            case WorkerException.Rejected rejected ->
                    problem(HttpStatus.BAD_REQUEST, "the worker refused this request: " + rejected.getMessage(), null);
            case WorkerException.Misconfigured misconfigured ->
                    problem(HttpStatus.BAD_GATEWAY, "the worker is misconfigured: " + misconfigured.getMessage(), null);
        };
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> unsupportedCharset(UnsupportedCharsetException e) {
        return problem(HttpStatus.UNSUPPORTED_MEDIA_TYPE, e.getMessage(), null);
    }

    /** A body that is not {@code application/json} where its handler reads raw bytes (the admin API). */
    @ExceptionHandler
    ResponseEntity<Object> notJson(Utf8JsonBody.UnsupportedMediaType e, WebRequest request) {
        return handleHttpMediaTypeNotSupported(e.asSpring(), new HttpHeaders(), HttpStatus.UNSUPPORTED_MEDIA_TYPE, request);
    }

    /** Nobody reads this answer; the status (nginx's "client closed request") only shows in metrics and logs. */
    @ExceptionHandler
    ResponseEntity<ProblemDetail> callerGone(CallerGoneException e) {
        return problem(HttpStatusCode.valueOf(CLIENT_CLOSED_REQUEST), e.getMessage(), null);
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> unexpected(Exception e) {
        LOG.error("unexpected failure while handling a request", e);
        return problem(HttpStatus.INTERNAL_SERVER_ERROR, "internal error; the gateway's log has the details", null);
    }

    @Override
    protected ResponseEntity<Object> handleExceptionInternal(
            Exception e, Object body, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
        var response = super.handleExceptionInternal(e, body, headers, status, request);
        if (response != null && response.getBody() instanceof ProblemDetail problem) {
            request.setAttribute(RequestTracking.FAILURE, problem.getDetail(), WebRequest.SCOPE_REQUEST);
        }
        return response;
    }

    /** curl sends a form without {@code -H}: say what to send instead of only what was refused. */
    @Override
    protected ResponseEntity<Object> handleHttpMediaTypeNotSupported(
            HttpMediaTypeNotSupportedException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
        String detail = "Content-Type '" + e.getContentType() + "' is not supported: send the body as JSON with "
                + "-H 'Content-Type: application/json'";
        request.setAttribute(RequestTracking.FAILURE, detail, WebRequest.SCOPE_REQUEST);
        return ResponseEntity.status(HttpStatus.UNSUPPORTED_MEDIA_TYPE).headers(headers)
                .body(ProblemDetail.forStatusAndDetail(HttpStatus.UNSUPPORTED_MEDIA_TYPE, detail));
    }

    @Override
    protected ResponseEntity<Object> handleHttpMessageNotReadable(
            HttpMessageNotReadableException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (cause instanceof BodyTooLargeException tooLarge) {
                request.setAttribute(RequestTracking.FAILURE, tooLarge.getMessage(), WebRequest.SCOPE_REQUEST);
                return ResponseEntity.status(HttpStatus.CONTENT_TOO_LARGE)
                        .header(HttpHeaders.CONNECTION, "close")
                        .body(ProblemDetail.forStatusAndDetail(HttpStatus.CONTENT_TOO_LARGE, tooLarge.getMessage()));
            }
            if (cause instanceof BodyTimeoutException late) {
                request.setAttribute(RequestTracking.FAILURE, late.getMessage(), WebRequest.SCOPE_REQUEST);
                return ResponseEntity.status(HttpStatus.REQUEST_TIMEOUT)
                        .header(HttpHeaders.CONNECTION, "close")
                        .body(ProblemDetail.forStatusAndDetail(HttpStatus.REQUEST_TIMEOUT, late.getMessage()));
            }
        }
        String detail = e.getMessage() != null && e.getMessage().startsWith("Required request body is missing")
                ? "the request body is missing: send a JSON object with prompt and user_id"
                : e.getCause() instanceof Utf8JsonBody.InvalidUtf8Exception notUtf8 ? notUtf8.getMessage()
                : "the request body is not valid JSON";
        request.setAttribute(RequestTracking.FAILURE, detail, WebRequest.SCOPE_REQUEST);
        return ResponseEntity.badRequest().body(ProblemDetail.forStatusAndDetail(HttpStatus.BAD_REQUEST, detail));
    }

    private static ResponseEntity<ProblemDetail> problem(HttpStatusCode status, String detail, Duration retryAfter) {
        var response = ResponseEntity.status(status);
        if (retryAfter != null) {
            response.header(HttpHeaders.RETRY_AFTER, Long.toString(Math.max(1, retryAfter.toSeconds())));
        }
        RequestContextHolder.currentRequestAttributes()
                .setAttribute(RequestTracking.FAILURE, detail, RequestAttributes.SCOPE_REQUEST);
        return response.body(ProblemDetail.forStatusAndDetail(status, detail));
    }
}
