package dev.batchgateway.completion;

import java.time.Duration;

/** The request was not completed within its deadline (time in the queue plus the worker call). */
public final class DeadlineExceededException extends RuntimeException {

    public DeadlineExceededException(Duration deadline) {
        super("the request was not completed within " + deadline.toMillis() + " ms");
    }
}
