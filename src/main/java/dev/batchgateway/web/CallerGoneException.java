package dev.batchgateway.web;

/** The caller left before its request was sent to the worker; nobody reads the answer to it. */
class CallerGoneException extends RuntimeException {

    CallerGoneException() {
        super("the caller closed the connection before its request was sent to the worker");
    }
}
