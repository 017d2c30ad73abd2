package dev.batchgateway.web;

/** A request body the gateway does not accept; the message names the field at fault. */
class InvalidRequestException extends RuntimeException {

    InvalidRequestException(String message) {
        super(message);
    }
}
