package dev.batchgateway.completion;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/** A ticker that stands still until the test moves it; a sleep on it is noted and moves it at once. */
public class ManualTicker implements Ticker {

    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    /** Every wait asked of this ticker, in order. */
    public final List<Duration> sleeps = new CopyOnWriteArrayList<>();

    @Override
    public void sleep(Duration duration) {
        sleeps.add(duration);
        advance(duration);
    }

    @Override
    public long nanoTime() {
        return now.get();
    }

    public void advance(Duration by) {
        now.addAndGet(by.toNanos());
    }
}
