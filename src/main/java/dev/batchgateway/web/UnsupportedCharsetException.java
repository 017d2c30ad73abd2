package dev.batchgateway.web;

/** The body declares a charset other than UTF-8, or its bytes are UTF-16 or UTF-32, or begin with a byte-order mark. */
class UnsupportedCharsetException extends RuntimeException {

    private UnsupportedCharsetException(String message) {
        super(message);
    }

    static UnsupportedCharsetException declared(String charset) {
        return new UnsupportedCharsetException("the request body must be UTF-8 JSON; charset "
                + charset.replaceAll("[^\\w.:-]", "?") + " is not accepted");
    }

    static UnsupportedCharsetException byteOrderMarkOrWideEncoding() {
        return new UnsupportedCharsetException(
                "the request body must be UTF-8 JSON without a byte-order mark; it is UTF-16, UTF-32 or begins with a BOM");
    }
}
