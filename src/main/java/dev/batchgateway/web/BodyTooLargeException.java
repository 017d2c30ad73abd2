package dev.batchgateway.web;

import java.io.IOException;

/** The request body went past {@link RequestBodyLimit#MAX_BYTES} while it was being read. */
class BodyTooLargeException extends IOException {

    BodyTooLargeException() {
        super("the request body is larger than " + RequestBodyLimit.MAX_BYTES + " bytes");
    }
}
