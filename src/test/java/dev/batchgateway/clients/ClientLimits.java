package dev.batchgateway.clients;

import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** The clock's part in the client tests of a day's limit. */
final class ClientLimits {

    private ClientLimits() {}

    /**
     * Waits, if need be, until the UTC day has more than a minute left: in its last minute a day's 429 is retryable (a
     * retry after its Retry-After is served), and a client would rightly wait for it.
     */
    static void awaitDayWithAMinuteLeft() {
        Instant now = Instant.now();
        Instant midnight = now.truncatedTo(ChronoUnit.DAYS).plus(1, ChronoUnit.DAYS);
        if (Duration.between(now, midnight).compareTo(Duration.ofSeconds(70)) < 0) {
            try {
                Thread.sleep(Duration.between(now, midnight).plusSeconds(1)); // waits for the clock, not for another thread
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for midnight", e);
            }
        }
    }

    /**
     * What a client's call threw, waited for at most {@code patience}: a client that sleeps until the limit's window ends
     * instead fails the test (and is woken, so that the test ends).
     */
    static Throwable failureWithin(Duration patience, Runnable call) {
        long started = System.nanoTime();
        try (var caller = Executors.newVirtualThreadPerTaskExecutor()) {
            var calling = caller.submit(call);
            try {
                calling.get(patience.toMillis(), TimeUnit.MILLISECONDS);
                throw new AssertionError("the call succeeded; a refusal was expected");
            } catch (ExecutionException refused) {
                return refused.getCause();
            } catch (TimeoutException e) {
                calling.cancel(true);
                throw new AssertionError("the client still had no answer after %.1f s: it waits to retry instead of giving up"
                        .formatted((System.nanoTime() - started) / 1e9));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the client", e);
            }
        }
    }
}
