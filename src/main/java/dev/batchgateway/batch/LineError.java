package dev.batchgateway.batch;

import java.util.Objects;

/**
 * Why validation refused a batch: one entry of the Batch object's {@code errors.data}.
 *
 * @param param the field at fault, or null
 * @param line the input file's line, from 1, or null when the error is not one line's
 */
public record LineError(String code, String message, String param, Integer line) {

    public LineError {
        Objects.requireNonNull(code, "code");
        Objects.requireNonNull(message, "message");
    }
}
