package dev.batchgateway.completion;

/** A monotonic clock in nanoseconds, so that batching deadlines can be tested without waiting for them. */
@FunctionalInterface
public interface Ticker {

    long nanoTime();

    static Ticker system() {
        return System::nanoTime;
    }
}
