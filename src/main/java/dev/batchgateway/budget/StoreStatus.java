package dev.batchgateway.budget;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Whether the budget store answered this instance's last round trip, as every part of the budgets sees it: while it is
 * away, slices are served from and not given back, and one request in the gateway tries a lease at most once a second.
 */
final class StoreStatus {

    private static final System.Logger LOG = System.getLogger(StoreStatus.class.getName());
    /** What a caller refused because the store is away is told to wait. */
    static final Duration RETRY_AFTER = Duration.ofSeconds(5);
    /** While the store is away, one lease in the gateway is tried at most this often; others short of budget get 503. */
    private static final long PROBE_EVERY_MILLIS = 1000;

    private volatile boolean away;
    private final AtomicLong nextProbeAt = new AtomicLong();

    boolean away() {
        return away;
    }

    void wentAway(BudgetStoreUnavailableException cause) {
        if (!away) {
            away = true;
            LOG.log(System.Logger.Level.WARNING, "the budget store is unavailable: limited users are served from the budget "
                    + "this instance holds, and get 503 beyond it (" + cause.getMessage() + ")");
        }
    }

    void isBack() {
        if (away) {
            away = false;
            LOG.log(System.Logger.Level.INFO, "the budget store is back");
        }
    }

    /** Whether a request may try the store now: always while it answers, else the first one in each second. */
    boolean mayTry(long nowMillis) {
        long probeAt = nextProbeAt.get();
        return !away || nowMillis >= probeAt && nextProbeAt.compareAndSet(probeAt, nowMillis + PROBE_EVERY_MILLIS);
    }
}
