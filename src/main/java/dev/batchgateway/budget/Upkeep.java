package dev.batchgateway.budget;

import dev.batchgateway.completion.Ticker;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The budgets' upkeep, in the background: gives back the slices that are due and reports what was billed the slow way
 * (requests settled without a charge in their usage row), renews holds, all in one statement per flush; re-reads users'
 * limits; deletes windows long over. While the store is away it asks less and less often.
 */
final class Upkeep implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(Upkeep.class.getName());
    /** The longest pause between the upkeep's tries while the store is away. */
    private static final Duration MAX_AWAY_PAUSE = Duration.ofSeconds(5);

    private final BudgetStore store;
    private final Lessee lessee;
    private final StoreStatus status;
    private final UserBudgets users;
    private final LimitsCache limits;
    private final InstantSource clock;
    private final Ticker ticker;
    private final Budgets.Timing timing;
    private final long renewEveryNanos;
    private final Object flushLock = new Object();
    private Thread keeper;

    Upkeep(BudgetStore store, Lessee lessee, StoreStatus status, UserBudgets users, LimitsCache limits, InstantSource clock,
            Ticker ticker, Budgets.Timing timing) {
        this.store = Objects.requireNonNull(store, "store");
        this.lessee = Objects.requireNonNull(lessee, "lessee");
        this.status = Objects.requireNonNull(status, "status");
        this.users = Objects.requireNonNull(users, "users");
        this.limits = Objects.requireNonNull(limits, "limits");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        this.timing = Objects.requireNonNull(timing, "timing");
        // a hold is renewed at least every third of its expiry: a renewal that times out leaves time for another
        this.renewEveryNanos = lessee.expiry().dividedBy(3).toNanos();
    }

    /** Runs the upkeep until {@link #close}. */
    void start() {
        keeper = Thread.ofVirtual().name("budget-keeper").start(this::keep);
    }

    /** Stops the upkeep (the slices stay: {@link #giveBackEverything} gives them back). */
    @Override
    public void close() throws InterruptedException {
        if (keeper != null) {
            keeper.interrupt();
            keeper.join(Duration.ofSeconds(10));
        }
    }

    /** Gives back the slices that are due and reports billed amounts, in one round trip. */
    void flush() {
        flush(false);
    }

    /** Gives back everything held and reports everything billed: at shutdown, once no request is in flight any more. */
    void giveBackEverything() {
        flush(true);
    }

    private void flush(boolean everything) {
        synchronized (flushLock) {
            if (status.away() && limits.read()) {
                limits.refreshLimits(); // a cheap read tells whether the store is back, so that slices due go back now
            }
            if (!status.away() && lessee.inDoubt()) {
                lessee.resolve(); // a lease that committed late is kept (and given back below when idle)
            }
            Instant now = clock.instant();
            long nowMillis = now.toEpochMilli();
            long nowNanos = ticker.nanoTime();
            // one give-back per window: a slice's, plus what the requests of a lost one were billed
            Map<BudgetStore.Account, List<Sending>> sending = new HashMap<>();
            for (UserBudget budget : users.all()) {
                budget.lock.lock();
                try {
                    boolean changed = budget.limitsChanged;
                    budget.limitsChanged = false;
                    for (Iterator<Lease> leases = budget.leases.values().iterator(); leases.hasNext(); ) {
                        Lease lease = leases.next();
                        boolean over = !now.isBefore(lease.end);
                        // while the store is away, a current window's slice stays: it is what this instance serves from
                        boolean due = over || everything || !status.away() && (changed
                                || nowMillis - lease.lastReserved >= timing.idleReturn().toMillis()
                                || nowMillis - lease.leasedAt >= (lease.tight ? timing.maxLeaseAge() : timing.maxAmpleLeaseAge()).toMillis());
                        if (due) {
                            lease.giveUpFree();
                        }
                        boolean report = lease.consumed != 0
                                && (due || nowMillis - lease.reportedAt >= timing.maxLeaseAge().toMillis());
                        boolean renew = lease.backed && lease.free + lease.reserved > 0 && nowNanos - lease.renewedAt >= renewEveryNanos;
                        if (lease.unused != 0 || lease.overdraft != 0 || report || renew) {
                            take(sending, budget, lease, nowMillis);
                        } else if (over && lease.reserved == 0 && lease.free == 0 && budget.leasing == null) {
                            leases.remove();
                            budget.current.remove(lease.account.window(), lease);
                        }
                    }
                    for (Iterator<Lease> lost = budget.lost.iterator(); lost.hasNext(); ) {
                        Lease lease = lost.next();
                        if (lease.consumed != 0) {
                            take(sending, budget, lease, nowMillis);
                        } else if (lease.reserved == 0) {
                            lost.remove();
                        }
                    }
                    if (budget.leases.isEmpty() && budget.lost.isEmpty() && budget.leasing == null) {
                        users.retire(budget);
                    }
                } finally {
                    budget.lock.unlock();
                }
            }
            if (sending.isEmpty()) {
                return;
            }
            try {
                lessee.send(List.copyOf(sending.keySet()), (operation, sentAt) -> {
                    // what leaves each hold is computed now, in turn: a lease's answer may just have found one expired
                    List<BudgetStore.GiveBack> giveBacks = new ArrayList<>(sending.size());
                    sending.forEach((account, sent) -> giveBacks.add(new BudgetStore.GiveBack(account,
                            sent.stream().mapToLong(Sending::released).sum(), sent.stream().mapToLong(Sending::consumed).sum())));
                    store.giveBack(operation, giveBacks).forEach(hold ->
                            gaveBack(sending.get(hold.account()), hold.lost(), operation, sentAt));
                    return null;
                },
                        new Lessee.Consequence() {
                            @Override
                            public void applied(BudgetStore.Operation operation, List<BudgetStore.Resolution> resolutions,
                                    long sentAtNanos) {
                                resolutions.forEach(resolution ->
                                        gaveBack(sending.get(resolution.account()), resolution.lost(), operation, sentAtNanos));
                            }

                            @Override
                            public void notApplied() {
                                // still this instance's: kept, for serving while the store is away, and sent again later
                                sending.values().forEach(sent -> sent.forEach(Upkeep::takeBack));
                            }
                        });
                status.isBack();
            } catch (BudgetStoreUnavailableException away) {
                status.wentAway(away);
            }
        }
    }

    /** Takes what a slice gives back and reports out of it, to send. */
    private static void take(Map<BudgetStore.Account, List<Sending>> sending, UserBudget budget, Lease lease, long nowMillis) {
        lease.reportedAt = nowMillis;
        sending.computeIfAbsent(lease.account, account -> new ArrayList<>(1))
                .add(new Sending(budget, lease, lease.unused, lease.overdraft, lease.consumed));
        lease.unused = 0;
        lease.overdraft = 0;
        lease.consumed = 0;
    }

    private static void takeBack(Sending sent) {
        sent.budget().lock.lock();
        try {
            sent.lease().takeBack(sent);
        } finally {
            sent.budget().lock.unlock();
        }
    }

    /** A give-back applied: the window's hold is renewed, or was found expired (its slice is lost). */
    private void gaveBack(List<Sending> sent, boolean lost, BudgetStore.Operation operation, long sentAtNanos) {
        if (sent == null || sent.isEmpty()) {
            return;
        }
        UserBudget budget = sent.getFirst().budget();
        BudgetStore.Account account = sent.getFirst().lease().account;
        budget.lock.lock();
        try {
            if (lost) {
                budget.lose(account, operation.number());
            } else {
                Lease lease = budget.leases.get(account);
                if (lease != null) {
                    lease.renewed(lessee.backedUntil(sentAtNanos), sentAtNanos);
                }
            }
        } finally {
            budget.lock.unlock();
        }
    }

    /** Deletes the store's windows that are long over: minutes after an hour, days after a week, months after a year. */
    void forgetOldWindows() {
        Instant now = clock.instant();
        Map<Window, Instant> before = new EnumMap<>(Window.class);
        before.put(Window.MINUTE, Window.MINUTE.start(now).minus(1, ChronoUnit.HOURS));
        before.put(Window.DAY, Window.DAY.start(now).minus(7, ChronoUnit.DAYS));
        before.put(Window.MONTH, Window.MONTH.start(now).minus(366, ChronoUnit.DAYS));
        store.forget(before);
    }

    private void keep() {
        long limitsDue = 0;
        long forgetDue = clock.millis() + timing.forgetEvery().toMillis();
        Duration pause = timing.flushEvery();
        while (true) {
            try {
                Thread.sleep(pause); // a period between round trips, not a synchronisation
            } catch (InterruptedException stop) {
                return;
            }
            try {
                if (status.away()) {
                    limits.refreshLimits(); // one cheap read tells whether the store is back
                    if (status.away()) {
                        // asked less and less often while it is away (as the usage ledger does): its connection
                        // pool's waits are everyone's waits
                        pause = pause.multipliedBy(2).compareTo(MAX_AWAY_PAUSE) > 0 ? MAX_AWAY_PAUSE : pause.multipliedBy(2);
                        continue;
                    }
                }
                pause = timing.flushEvery();
                flush();
                long now = clock.millis();
                if (now >= limitsDue) {
                    limitsDue = now + timing.limitsEvery().toMillis();
                    limits.refreshLimits();
                }
                if (now >= forgetDue) {
                    forgetDue = now + timing.forgetEvery().toMillis();
                    forgetOldWindows();
                }
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "budget upkeep failed; trying again", e);
            }
        }
    }
}
