package dev.batchgateway.completion;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A monotonic clock in nanoseconds, and the way to wait on it, so that batching deadlines and back-offs can be tested
 * without waiting for them.
 */
@FunctionalInterface
public interface Ticker {

    long nanoTime();

    /** Waits this long; a test's ticker may only note the wait and move its clock. */
    default void sleep(Duration duration) throws InterruptedException {
        TimeUnit.NANOSECONDS.sleep(duration.toNanos());
    }

    static Ticker system() {
        return System::nanoTime;
    }
}
