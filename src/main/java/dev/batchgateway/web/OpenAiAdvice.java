package dev.batchgateway.web;

import dev.batchgateway.budget.BudgetUnavailableException;
import dev.batchgateway.budget.LimitExceededException;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.DeadlineExceededException;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.identity.KeyStoreUnavailableException;
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
import org.springframework.web.context.request.RequestAttributes;
import org.springframework.web.context.request.RequestContextHolder;
import tools.jackson.databind.json.JsonMapper;

/**
 * Every failure of the OpenAI-compatible API in OpenAI's error shape, {@code {"error": {"message", "type", "param",
 * "code"}}}, with OpenAI's statuses, so that the SDKs raise their own exception types; never a stack trace. Comes
 * before {@link ProblemAdvice}, which keeps answering {@code /complete} in problem+json; both take statuses, {@code
 * Retry-After}, messages and types from {@link Failure}'s table. What reaches no handler here (a route or method under
 * {@code /v1} that does not exist, a body refused by a filter, a request Jetty refuses) is rendered by {@link #answer}
 * or {@link #bytes} too, wherever a path is {@link #covers covered}.
 */
@Order(Ordered.HIGHEST_PRECEDENCE)
@RestControllerAdvice(assignableTypes = {OpenAiController.class, ResponsesController.class, EmbeddingsController.class})
class OpenAiAdvice {

    private static final Logger LOG = LoggerFactory.getLogger(OpenAiAdvice.class);
    private static final String PREFIX = "/v1";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    /** The failures of {@link Failure}'s table that reach this API, in OpenAI's error shape. */
    @ExceptionHandler({OpenAiError.class, NotAuthenticatedException.class, NotAllowedException.class,
            KeyStoreUnavailableException.class, LimitExceededException.class, BudgetUnavailableException.class,
            CompletionRejectedException.class, DeadlineExceededException.class, WorkerException.class,
            UnsupportedCharsetException.class, CallerGoneException.class})
    ResponseEntity<Map<String, Object>> known(RuntimeException e) {
        return error(Failure.of(e));
    }

    @ExceptionHandler
    ResponseEntity<?> unreadable(HttpMessageNotReadableException e) {
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (cause instanceof BodyTimeoutException late) {
                return closing(new Failure(HttpStatus.REQUEST_TIMEOUT, late.getMessage(), null, "invalid_request_error", null, null),
                        HttpHeaders.EMPTY);
            }
        }
        String detail = e.getCause() instanceof BodyTooLargeException tooLarge ? tooLarge.getMessage()
                : e.getCause() instanceof Utf8JsonBody.InvalidUtf8Exception notUtf8 ? notUtf8.getMessage()
                : "We could not parse the JSON body of your request.";
        if (e.getCause() instanceof BodyTooLargeException) {
            // as ProblemAdvice's: the rest of the body is not read, so the connection is not kept
            return closing(new Failure(HttpStatus.CONTENT_TOO_LARGE, detail, null, "invalid_request_error", null, null),
                    HttpHeaders.EMPTY);
        }
        return error(HttpStatus.BAD_REQUEST, detail, "invalid_request_error", null, null, null);
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> notJson(Utf8JsonBody.UnsupportedMediaType e) {
        return error(HttpStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as JSON, with Content-Type: application/json",
                "invalid_request_error", null, null, null);
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
    ResponseEntity<Map<String, Object>> unexpected(Exception e) {
        LOG.error("unexpected failure while handling an OpenAI API request", e);
        return error(Failure.unexpected());
    }

    private static ResponseEntity<Map<String, Object>> error(
            HttpStatusCode status, String message, String type, String param, String code, Duration retryAfter) {
        return error(new Failure(status, message, retryAfter, type, param, code));
    }

    private static ResponseEntity<Map<String, Object>> error(Failure failure) {
        return answer(failure, HttpHeaders.EMPTY);
    }

    /**
     * Whether a path is the OpenAI-compatible API's: every failure there, whatever answers it (this advice, {@link
     * ProblemAdvice} for a route that does not exist, a filter, Jetty), is in OpenAI's shape, the only one its SDKs read.
     */
    static boolean covers(String path) {
        return path != null && (path.equals(PREFIX) || path.startsWith(PREFIX + "/"));
    }

    /** A failure in OpenAI's shape, with its own headers and {@code more} (e.g. {@code Allow}, {@code Connection}). */
    static ResponseEntity<Map<String, Object>> answer(Failure failure, HttpHeaders more) {
        if (RequestContextHolder.getRequestAttributes() instanceof RequestAttributes request) {
            RequestTracking.failed(request, failure);
        }
        var headers = new HttpHeaders();
        headers.putAll(more);
        headers.remove(HttpHeaders.CONTENT_TYPE);
        headers.putAll(failure.headers());
        return ResponseEntity.status(failure.status()).headers(headers).contentType(MediaType.APPLICATION_JSON)
                .body(body(failure));
    }

    /**
     * A failure in OpenAI's shape after which the connection closes (the rest of the body is not read): with its
     * Content-Length, so that its end is known from the length and not from the close, which a reset (closing a socket
     * with unread request bytes sends one) could cut short: the JDK client then failed with "http1_0 content".
     */
    static ResponseEntity<byte[]> closing(Failure failure, HttpHeaders more) {
        var answer = answer(failure, more);
        byte[] body = bytes(failure);
        return ResponseEntity.status(answer.getStatusCode()).headers(answer.getHeaders())
                .header(HttpHeaders.CONNECTION, "close").contentLength(body.length).body(body);
    }

    /** OpenAI's error object: {@code {"error": {"message", "type", "param", "code"}}}, and a limit's fields beside them. */
    static Map<String, Object> body(Failure failure) {
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("message", failure.message());
        error.put("type", failure.type());
        error.put("param", failure.param());
        error.put("code", failure.code());
        error.putAll(failure.fields());
        return Map.of("error", error);
    }

    /** {@link #body} as JSON bytes, for the answers written before Spring (a filter, Jetty). */
    static byte[] bytes(Failure failure) {
        return JSON.writeValueAsBytes(body(failure));
    }
}
