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
 * Every failure of the gateway's own API as {@code application/problem+json} (RFC 9457), with a detail that says what
 * to fix and never a stack trace; statuses, {@code Retry-After} and details come from {@link Failure}'s table.
 */
@RestControllerAdvice
class ProblemAdvice extends ResponseEntityExceptionHandler {

    private static final Logger LOG = LoggerFactory.getLogger(ProblemAdvice.class);

    /** The failures of {@link Failure}'s table that reach this API, rendered as problem+json. */
    @ExceptionHandler({NotAuthenticatedException.class, NotAllowedException.class, KeyStoreUnavailableException.class,
            AuditUnavailableException.class, LimitExceededException.class, BudgetUnavailableException.class,
            InvalidRequestException.class, CompletionRejectedException.class, DeadlineExceededException.class,
            WorkerException.class, UnsupportedCharsetException.class, CallerGoneException.class})
    ResponseEntity<ProblemDetail> known(RuntimeException e) {
        return problem(Failure.of(e));
    }

    /** A body that is not {@code application/json} where its handler reads raw bytes (the admin API). */
    @ExceptionHandler
    ResponseEntity<Object> notJson(Utf8JsonBody.UnsupportedMediaType e, WebRequest request) {
        return handleHttpMediaTypeNotSupported(e.asSpring(), new HttpHeaders(), HttpStatus.UNSUPPORTED_MEDIA_TYPE, request);
    }

    @ExceptionHandler
    ResponseEntity<ProblemDetail> unexpected(Exception e) {
        LOG.error("unexpected failure while handling a request", e);
        return problem(Failure.unexpected());
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

    private static ResponseEntity<ProblemDetail> problem(Failure failure) {
        RequestContextHolder.currentRequestAttributes()
                .setAttribute(RequestTracking.FAILURE, failure.message(), RequestAttributes.SCOPE_REQUEST);
        ProblemDetail problem = ProblemDetail.forStatusAndDetail(failure.status(), failure.message());
        failure.fields().forEach(problem::setProperty);
        return ResponseEntity.status(failure.status()).headers(failure.headers()).body(problem);
    }
}
