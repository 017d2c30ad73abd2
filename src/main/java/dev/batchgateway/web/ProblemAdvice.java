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
import jakarta.servlet.http.HttpServletRequest;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.ProblemDetail;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.HttpRequestMethodNotSupportedException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.context.request.RequestContextHolder;
import org.springframework.web.context.request.ServletWebRequest;
import org.springframework.web.context.request.WebRequest;
import org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping;
import org.springframework.web.servlet.mvc.method.annotation.ResponseEntityExceptionHandler;
import org.springframework.web.servlet.resource.NoResourceFoundException;

/**
 * Every failure of the gateway's own API as {@code application/problem+json} (RFC 9457), with a detail that says what
 * to fix and never a stack trace; statuses, {@code Retry-After} and details come from {@link Failure}'s table.
 *
 * <p>It also answers what no handler of the OpenAI-compatible API saw (a route under {@code /v1} that does not exist,
 * a method its route does not take): in OpenAI's shape, as {@link OpenAiAdvice} answers the rest of {@code /v1}.
 */
@RestControllerAdvice
class ProblemAdvice extends ResponseEntityExceptionHandler {

    private static final Logger LOG = LoggerFactory.getLogger(ProblemAdvice.class);

    private final ObjectProvider<RequestMappingHandlerMapping> routes;

    ProblemAdvice(@Qualifier("requestMappingHandlerMapping") ObjectProvider<RequestMappingHandlerMapping> routes) {
        this.routes = routes;
    }

    /** The failures of {@link Failure}'s table that reach this API, rendered as problem+json. */
    @ExceptionHandler({NotAuthenticatedException.class, NotAllowedException.class, KeyStoreUnavailableException.class,
            AuditUnavailableException.class, LimitExceededException.class, BudgetUnavailableException.class,
            InvalidRequestException.class, CompletionRejectedException.class, DeadlineExceededException.class,
            WorkerException.class, UnsupportedCharsetException.class, CallerGoneException.class})
    ResponseEntity<?> known(RuntimeException e, HttpServletRequest request) {
        return problem(Failure.of(e), request);
    }

    /** A body that is not {@code application/json} where its handler reads raw bytes (the admin API). */
    @ExceptionHandler
    ResponseEntity<Object> notJson(Utf8JsonBody.UnsupportedMediaType e, WebRequest request) {
        return handleHttpMediaTypeNotSupported(e.asSpring(), new HttpHeaders(), HttpStatus.UNSUPPORTED_MEDIA_TYPE, request);
    }

    @ExceptionHandler
    ResponseEntity<?> unexpected(Exception e, HttpServletRequest request) {
        LOG.error("unexpected failure while handling a request", e);
        return problem(Failure.unexpected(), request);
    }

    @Override
    protected ResponseEntity<Object> handleExceptionInternal(
            Exception e, Object body, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
        var response = super.handleExceptionInternal(e, body, headers, status, request);
        if (response != null && response.getBody() instanceof ProblemDetail problem) {
            request.setAttribute(RequestTracking.FAILURE, problem.getDetail(), WebRequest.SCOPE_REQUEST);
        }
        return inOpenAisShapeUnderV1(response, e, request);
    }

    /** curl sends a form without {@code -H}: say what to send instead of only what was refused. */
    @Override
    protected ResponseEntity<Object> handleHttpMediaTypeNotSupported(
            HttpMediaTypeNotSupportedException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
        String detail = "Content-Type '" + e.getContentType() + "' is not supported: send the body as JSON with "
                + "-H 'Content-Type: application/json'";
        request.setAttribute(RequestTracking.FAILURE, detail, WebRequest.SCOPE_REQUEST);
        return inOpenAisShapeUnderV1(ResponseEntity.status(HttpStatus.UNSUPPORTED_MEDIA_TYPE).headers(headers)
                .body(ProblemDetail.forStatusAndDetail(HttpStatus.UNSUPPORTED_MEDIA_TYPE, detail)), e, request);
    }

    @Override
    protected ResponseEntity<Object> handleHttpMessageNotReadable(
            HttpMessageNotReadableException e, HttpHeaders headers, HttpStatusCode status, WebRequest request) {
        for (Throwable cause = e; cause != null; cause = cause.getCause()) {
            if (cause instanceof BodyTooLargeException tooLarge) {
                request.setAttribute(RequestTracking.FAILURE, tooLarge.getMessage(), WebRequest.SCOPE_REQUEST);
                return inOpenAisShapeUnderV1(ResponseEntity.status(HttpStatus.CONTENT_TOO_LARGE)
                        .header(HttpHeaders.CONNECTION, "close")
                        .body(ProblemDetail.forStatusAndDetail(HttpStatus.CONTENT_TOO_LARGE, tooLarge.getMessage())), e, request);
            }
            if (cause instanceof BodyTimeoutException late) {
                request.setAttribute(RequestTracking.FAILURE, late.getMessage(), WebRequest.SCOPE_REQUEST);
                return inOpenAisShapeUnderV1(ResponseEntity.status(HttpStatus.REQUEST_TIMEOUT)
                        .header(HttpHeaders.CONNECTION, "close")
                        .body(ProblemDetail.forStatusAndDetail(HttpStatus.REQUEST_TIMEOUT, late.getMessage())), e, request);
            }
        }
        String detail = e.getMessage() != null && e.getMessage().startsWith("Required request body is missing")
                ? "the request body is missing: send a JSON object with prompt and user_id"
                : e.getCause() instanceof Utf8JsonBody.InvalidUtf8Exception notUtf8 ? notUtf8.getMessage()
                : "the request body is not valid JSON";
        request.setAttribute(RequestTracking.FAILURE, detail, WebRequest.SCOPE_REQUEST);
        return inOpenAisShapeUnderV1(
                ResponseEntity.badRequest().body(ProblemDetail.forStatusAndDetail(HttpStatus.BAD_REQUEST, detail)), e, request);
    }

    private static ResponseEntity<?> problem(Failure failure, HttpServletRequest request) {
        if (OpenAiAdvice.covers(request.getRequestURI())) {
            return OpenAiAdvice.answer(failure, HttpHeaders.EMPTY);
        }
        RequestTracking.failed(RequestContextHolder.currentRequestAttributes(), failure);
        ProblemDetail problem = ProblemDetail.forStatusAndDetail(failure.status(), failure.message());
        failure.fields().forEach(problem::setProperty);
        return ResponseEntity.status(failure.status()).headers(failure.headers()).body(problem);
    }

    /**
     * Spring's answer to a request it could not route or read, as it is; under {@code /v1} in OpenAI's shape instead,
     * with its status and headers ({@code Allow}, {@code Connection: close}), and for a route or method that does not
     * exist a message that names those that do.
     */
    @SuppressWarnings("unchecked")
    private ResponseEntity<Object> inOpenAisShapeUnderV1(ResponseEntity<Object> answer, Exception e, WebRequest request) {
        if (answer == null || !(answer.getBody() instanceof ProblemDetail problem)
                || !(request instanceof ServletWebRequest servlet) || !OpenAiAdvice.covers(servlet.getRequest().getRequestURI())) {
            return answer;
        }
        HttpServletRequest http = servlet.getRequest();
        String message = switch (e) {
            case NoResourceFoundException missing -> "Invalid URL (" + http.getMethod() + " " + http.getRequestURI()
                    + "): the OpenAI-compatible API of this gateway is " + String.join(", ", openAiRoutes());
            case HttpRequestMethodNotSupportedException method -> method.getMethod() + " is not allowed on "
                    + http.getRequestURI() + ": use " + String.join(" or ", method.getSupportedMethods() == null
                            ? new String[0] : method.getSupportedMethods());
            default -> problem.getDetail();
        };
        var failure = new Failure(answer.getStatusCode(), message, null,
                answer.getStatusCode().is5xxServerError() ? "server_error" : "invalid_request_error", null, null,
                problem.getProperties() == null ? Map.of() : problem.getProperties());
        if (answer.getHeaders().getConnection().contains("close")) {
            return (ResponseEntity<Object>) (ResponseEntity<?>) OpenAiAdvice.closing(failure, answer.getHeaders());
        }
        return (ResponseEntity<Object>) (ResponseEntity<?>) OpenAiAdvice.answer(failure, answer.getHeaders());
    }

    /** The routes under {@code /v1}, as declared ({@code POST /v1/completions}, …), read from Spring's own routing. */
    private List<String> openAiRoutes() {
        var declared = new TreeSet<String>();
        routes.ifAvailable(mapping -> mapping.getHandlerMethods().keySet().forEach(route -> {
            for (String path : route.getPatternValues()) {
                if (OpenAiAdvice.covers(path)) {
                    String shown = path.replace("{*", "{"); // a catch-all's name as the SDKs' documentation writes it
                    route.getMethodsCondition().getMethods().forEach(method -> declared.add(method + " " + shown));
                }
            }
        }));
        return List.copyOf(declared);
    }
}
