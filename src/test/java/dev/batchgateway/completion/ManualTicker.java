package dev.batchgateway.completion;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/** A ticker that stands still until the test moves it. */
public class ManualTicker implements Ticker {

    private final AtomicLong now = new AtomicLong(1_000_000_000L);

    @Override
    public long nanoTime() {
        return now.get();
    }

    public void advance(Duration by) {
        now.addAndGet(by.toNanos());
    }
}
