package dev.batchgateway.web;

import dev.batchgateway.batch.BatchApiException;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.bind.MissingServletRequestParameterException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.multipart.MaxUploadSizeExceededException;
import org.springframework.web.multipart.MultipartException;
import org.springframework.web.multipart.support.MissingServletRequestPartException;

/**
 * The Batch API's failures in OpenAI's error shape, as {@link OpenAiAdvice} answers the completion endpoints: its own
 * refusals (400 naming the field or limit, 404 for what is not the caller's, 409), a multipart body that is missing a
 * part or too large, and everything else through {@link Failure}'s table.
 */
@Order(Ordered.HIGHEST_PRECEDENCE)
@RestControllerAdvice(assignableTypes = {FilesController.class, BatchesController.class})
class BatchApiAdvice {

    private static final Logger LOG = LoggerFactory.getLogger(BatchApiAdvice.class);
    private static final String INVALID = "invalid_request_error";

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> refused(BatchApiException e) {
        HttpStatus status = switch (e) {
            case BatchApiException.NotFound notFound -> HttpStatus.NOT_FOUND;
            case BatchApiException.Conflict conflict -> HttpStatus.CONFLICT;
            default -> HttpStatus.BAD_REQUEST;
        };
        return answer(new Failure(status, e.getMessage(), null, INVALID, e.param(), null));
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> tooLarge(MaxUploadSizeExceededException e) {
        return answer(new Failure(HttpStatus.BAD_REQUEST, "the file is larger than 200 MB, the most a batch's input file may hold",
                null, INVALID, "file", null));
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> missingPart(MissingServletRequestPartException e) {
        return answer(new Failure(HttpStatus.BAD_REQUEST, e.getRequestPartName() + " is required", null, INVALID,
                e.getRequestPartName(), null));
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> missingParameter(MissingServletRequestParameterException e) {
        return answer(new Failure(HttpStatus.BAD_REQUEST, e.getParameterName() + " is required", null, INVALID,
                e.getParameterName(), null));
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> notMultipart(MultipartException e) {
        return answer(new Failure(HttpStatus.BAD_REQUEST, "send the file as multipart/form-data with the parts file and purpose",
                null, INVALID, null, null));
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> mediaType(HttpMediaTypeNotSupportedException e) {
        return answer(new Failure(HttpStatus.UNSUPPORTED_MEDIA_TYPE,
                "send files as multipart/form-data and batches as JSON (Content-Type: application/json)", null, INVALID, null, null));
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> unreadable(HttpMessageNotReadableException e) {
        return answer(new Failure(HttpStatus.BAD_REQUEST, "We could not parse the JSON body of your request.", null, INVALID, null, null));
    }

    @ExceptionHandler
    ResponseEntity<Map<String, Object>> other(Exception e) {
        Failure failure = Failure.of(e);
        if (failure.status().is5xxServerError() && failure.equals(Failure.unexpected())) {
            LOG.error("unexpected failure while handling a Batch API request", e);
        }
        return answer(failure);
    }

    private static ResponseEntity<Map<String, Object>> answer(Failure failure) {
        return OpenAiAdvice.answer(failure, HttpHeaders.EMPTY);
    }
}
