package dev.batchgateway.identity;

import com.github.benmanes.caffeine.cache.Ticker;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;

/** A clock that moves only when told to: wall time for keys' times, and the cache's ticker, which move together. */
final class ManualClock implements InstantSource, Ticker {

    private static final Instant START = Instant.parse("2026-11-24T08:00:00Z");

    private volatile Instant now = START;

    @Override
    public Instant instant() {
        return now;
    }

    @Override
    public long read() {
        return Duration.between(START, now).toNanos();
    }

    void advance(Duration by) {
        now = now.plus(by);
    }
}
