package dev.batchgateway.clients;

import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;

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
}
