package dev.batchgateway.web;

import org.springframework.http.HttpStatus;

/**
 * A refusal on the OpenAI-compatible API, answered in OpenAI's error shape
 * {@code {"error": {"message", "type", "param", "code"}}} by {@link OpenAiAdvice}.
 */
final class OpenAiError extends RuntimeException {

    final HttpStatus status;
    final String type;
    final String param;
    final String code;

    OpenAiError(HttpStatus status, String message, String type, String param, String code) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400 {@code invalid_request_error}, naming the request field at fault. */
    static OpenAiError invalid(String param, String message) {
        return new OpenAiError(HttpStatus.BAD_REQUEST, message, "invalid_request_error", param, null);
    }

    /** 404 {@code model_not_found}. */
    static OpenAiError modelNotFound(String model) {
        return new OpenAiError(HttpStatus.NOT_FOUND, "The model `" + model + "` does not exist or you do not have access to it.",
                "invalid_request_error", "model", "model_not_found");
    }
}
