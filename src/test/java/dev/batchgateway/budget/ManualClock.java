package dev.batchgateway.budget;

import dev.batchgateway.completion.Ticker;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.time.temporal.ChronoUnit;

/** A clock that moves only when told to; its {@link #ticker} moves with it. */
final class ManualClock implements InstantSource {

    private volatile Instant now;

    ManualClock(Instant start) {
        this.now = start;
    }

    @Override
    public Instant instant() {
        return now;
    }

    void advance(Duration by) {
        now = now.plus(by);
    }

    /** A monotonic ticker that reads this clock. */
    Ticker ticker() {
        return () -> ChronoUnit.NANOS.between(Instant.EPOCH, now);
    }
}
