package dev.batchgateway.completion;

/** Requests sent to the worker per second, smoothed over windows of about a second; tells callers when to retry. */
final class DrainRate {

    private static final long WINDOW_NANOS = 1_000_000_000L;

    private final Ticker ticker;
    private long windowStart;
    private long inWindow;
    private volatile double perSecond;

    DrainRate(Ticker ticker) {
        this.ticker = ticker;
        this.windowStart = ticker.nanoTime();
    }

    /** Counts requests that left the queue; called by the batch loop only. */
    void record(int requests) {
        inWindow += requests;
        long now = ticker.nanoTime();
        long elapsed = now - windowStart;
        if (elapsed >= WINDOW_NANOS) {
            double rate = inWindow * 1e9 / elapsed;
            perSecond = perSecond == 0 ? rate : (perSecond + rate) / 2;
            windowStart = now;
            inWindow = 0;
        }
    }

    double perSecond() {
        return perSecond;
    }
}
