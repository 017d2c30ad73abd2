package dev.batchgateway.http;

import java.time.Duration;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ProblemDetail;
import org.springframework.web.ErrorResponseException;
import org.springframework.web.server.ResponseStatusException;

/**
 * How the API's controllers refuse a request, each the same way: Spring's own exceptions, which the application's
 * problem handling renders as problem+json with the detail given here.
 */
public final class Refusals {

    /** How much of a bad value a refusal echoes. */
    private static final int SHOWN_CHARS = 64;
    private static final Duration RETRY_AFTER = Duration.ofSeconds(5);

    private Refusals() {}

    /** A 400 saying what to fix. */
    public static ResponseStatusException badRequest(String detail) {
        return new ResponseStatusException(HttpStatus.BAD_REQUEST, detail);
    }

    /** A 503 with Retry-After for a database that did not answer: "the {@code what} is unavailable; try again later". */
    public static ErrorResponseException unavailable(String what, RuntimeException away) {
        var unavailable = new ErrorResponseException(HttpStatus.SERVICE_UNAVAILABLE, ProblemDetail.forStatusAndDetail(
                HttpStatus.SERVICE_UNAVAILABLE, "the " + what + " is unavailable; try again later"), away);
        unavailable.getHeaders().set(HttpHeaders.RETRY_AFTER, Long.toString(RETRY_AFTER.toSeconds()));
        return unavailable;
    }

    /** A bad value is echoed to help the caller, but never at length: its first 64 characters. */
    public static String shown(String text) {
        return text.length() <= SHOWN_CHARS ? text : text.substring(0, SHOWN_CHARS) + "…";
    }
}
