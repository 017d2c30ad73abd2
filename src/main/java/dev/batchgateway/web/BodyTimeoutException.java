package dev.batchgateway.web;

import java.io.IOException;
import java.util.concurrent.TimeoutException;

/** The request body did not arrive within its deadline ({@code GATEWAY_BODY_TIMEOUT}, see {@link RequestDeadlines}). */
class BodyTimeoutException extends IOException {

    BodyTimeoutException(Throwable late) {
        super("the request body did not arrive in time: send it at once after the headers", late);
    }

    /** Whether this read failure is Jetty's timeout of a body that came too slowly. */
    static boolean isLateBody(IOException failure) {
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            if (cause instanceof TimeoutException) {
                return true;
            }
        }
        return false;
    }
}
