package dev.batchgateway.batch;

import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import java.util.List;
import java.util.UUID;
import java.util.function.Function;

/**
 * The wire format of a batch's lines, which the endpoints they name define: how a line's envelope is checked, how its
 * body becomes a request exactly as the endpoint would read it, and how the endpoint's answer or refusal is written.
 */
public interface LineFormat {

    /**
     * A line's envelope, checked as validation checks it (JSON, {@code method}, {@code url} equal to the batch's
     * endpoint, {@code custom_id}, a served model).
     *
     * @throws InvalidLineException what is wrong with the line
     */
    Envelope envelope(String line, String endpoint);

    /** A line's parts: its id, the endpoint it names and the body for it (a JSON object's text). */
    record Envelope(String customId, String url, String body) {}

    /** Why a line fails validation: an entry of {@code errors.data} without the line number. */
    final class InvalidLineException extends RuntimeException {
        private final String code;
        private final String param;

        public InvalidLineException(String code, String param, String message) {
            super(message, null, false, false);
            this.code = code;
            this.param = param;
        }

        public LineError at(int line) {
            return new LineError(code, getMessage(), param, line);
        }
    }

    /** The endpoints a batch may name. */
    List<String> endpoints();

    /**
     * What a line's body asks, read as its endpoint reads it, for {@code user}, in the flex tier, under {@code
     * requestId}; or the endpoint's own refusal.
     */
    Reading read(String url, String body, long user, UUID requestId);

    /** A line's body read: a request and how its answer is written, or the endpoint's refusal. */
    sealed interface Reading {
        record Asks(CompletionRequest request, Function<Completion, String> answer) implements Reading {}

        record Refused(Answer refusal) implements Reading {}
    }

    /** An endpoint's answer: its HTTP status and body (JSON text). */
    record Answer(int status, String body) {}

    /** The endpoint's answer to a failure of the request (a worker's, a deadline, …), in OpenAI's error shape. */
    Answer failure(Throwable failure);

    /** A line of the output file (status 200) or the error file: its id, the line's custom id, the endpoint's answer. */
    String resultLine(UUID requestId, String customId, Answer answer);
}
