package dev.batchgateway.budget;

import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The budget store in memory, with the grant rule of the PostgreSQL one (at least {@code need} if the limit leaves it,
 * up to {@code want}, at most half of what is left), each call atomic; {@link #away} makes every call fail like a dead
 * database. Counts its round trips.
 */
public final class MemoryBudgetStore implements BudgetStore {

    /** One window's row. */
    public static final class Row {
        public long granted;
        public long consumed;
    }

    private final Map<Long, Limits> limits = new HashMap<>();
    private final Map<Account, Row> windows = new HashMap<>();
    public final AtomicInteger leases = new AtomicInteger();
    public final AtomicInteger giveBacks = new AtomicInteger();
    public volatile boolean away;
    /** How long each lease takes, as a round trip to a busy database would. */
    public volatile java.time.Duration leaseTime = java.time.Duration.ZERO;
    private long clock;

    @Override
    public synchronized void putLimits(long user, Limits limits) {
        reachable();
        this.limits.put(user, limits);
    }

    @Override
    public synchronized Optional<Limits> limitsOf(long user) {
        reachable();
        return Optional.ofNullable(limits.get(user));
    }

    @Override
    public synchronized LimitsChanges limitsChangedSince(Instant since) {
        reachable();
        return new LimitsChanges(Map.copyOf(limits), Instant.EPOCH.plusMillis(++clock));
    }

    @Override
    public synchronized List<Grant> lease(List<Ask> asks) {
        reachable();
        leases.incrementAndGet();
        if (leaseTime.isPositive()) {
            try {
                Thread.sleep(leaseTime); // the round trip
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BudgetStoreUnavailableException("interrupted", e);
            }
        }
        List<Grant> grants = new ArrayList<>();
        for (Ask ask : asks) {
            Row row = windows.computeIfAbsent(ask.account(), a -> new Row());
            long left = ask.limit() - row.granted;
            long granted = left >= ask.need() ? Math.min(ask.want(), Math.max(ask.need(), left / 2)) : 0;
            row.granted += granted;
            grants.add(new Grant(ask.account(), granted, row.granted, row.consumed));
        }
        return grants;
    }

    @Override
    public synchronized void giveBack(List<GiveBack> giveBacks) {
        reachable();
        this.giveBacks.incrementAndGet();
        for (GiveBack back : giveBacks) {
            Row row = windows.get(back.account());
            if (row == null) {
                throw new IllegalStateException("given back to a window never leased from: " + back.account());
            }
            row.granted -= back.unused();
            row.consumed += back.consumed();
        }
    }

    @Override
    public synchronized Map<Window, Long> consumed(long user, Map<Window, Instant> windowStarts) {
        reachable();
        Map<Window, Long> consumed = new EnumMap<>(Window.class);
        windowStarts.forEach((window, start) -> {
            Row row = windows.get(new Account(user, window, start));
            consumed.put(window, row == null ? 0 : row.consumed);
        });
        return consumed;
    }

    @Override
    public synchronized void forget(Map<Window, Instant> startedBefore) {
        reachable();
        windows.keySet().removeIf(account -> account.start().isBefore(startedBefore.get(account.window())));
    }

    /** A copy of a window's row, or an empty row when nobody leased from it. */
    public synchronized Row row(long user, Window window, Instant start) {
        Row row = windows.get(new Account(user, window, start));
        Row copy = new Row();
        if (row != null) {
            copy.granted = row.granted;
            copy.consumed = row.consumed;
        }
        return copy;
    }

    private void reachable() {
        if (away) {
            throw new BudgetStoreUnavailableException("the budget store is away", null);
        }
    }
}
