package dev.batchgateway.web;

/** The body declares a charset other than UTF-8. */
class UnsupportedCharsetException extends RuntimeException {

    UnsupportedCharsetException(String charset) {
        super("the request body must be UTF-8 JSON; charset " + charset.replaceAll("[^\\w.:-]", "?") + " is not accepted");
    }
}
