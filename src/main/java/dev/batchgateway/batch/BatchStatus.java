package dev.batchgateway.batch;

import java.util.Locale;

/** Where a batch is in its lifecycle, with OpenAI's names. */
public enum BatchStatus {
    VALIDATING, FAILED, IN_PROGRESS, FINALIZING, COMPLETED, EXPIRED, CANCELLING, CANCELLED;

    /** The status's name in the Batch object: {@code in_progress}, … */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The status named {@code name} in the Batch object. */
    public static BatchStatus named(String name) {
        return valueOf(name.toUpperCase(Locale.ROOT));
    }

    /** Whether the batch may still use its input file: it has not reached an end. */
    public boolean running() {
        return this == VALIDATING || this == IN_PROGRESS || this == FINALIZING || this == CANCELLING;
    }
}
