package dev.batchgateway.budget;

import java.time.Clock;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import dev.batchgateway.completion.BudgetCharge;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * The budget store in memory, with the rules of the PostgreSQL one (V7): per window, what was reported billed and one
 * hold per instance with an expiry on the store's clock; a lease grants from the limit less consumed less the unexpired
 * holds (at least {@code need} if that leaves it, up to {@code want}, at most half of it); each operation applies at
 * most once per hold ({@code last_op < number}) and {@link #resolve} fences one. Each call is atomic.
 *
 * <p>Faults: {@link #away} makes every call fail like a dead database; {@link #cutOff} fails the operations of some
 * instances (a partition); {@link #faults} makes the next operations (leases, give-backs, resolutions) time out on the
 * gateway's side, having committed, not committed, or still queued behind a lock (they commit at {@link
 * #commitQueued}, unless fenced meanwhile). Counts its round trips.
 */
public final class MemoryBudgetStore implements BudgetStore {

    /** What the gateway sees of an operation that timed out. */
    public enum Fault {
        /** It committed, and its answer was lost. */
        COMMITTED,
        /** It never reached the store. */
        NOT_COMMITTED,
        /** It waits behind a lock: it commits when {@link #commitQueued} runs, if nothing fenced it by then. */
        QUEUED
    }

    /** One window's row, as a test sees it: what is taken (billed and held by unexpired holds) and what is billed. */
    public static final class Row {
        public long granted;
        public long consumed;
    }

    private static final class Hold {
        long held;
        Instant expiresAt = Instant.MIN;
        long lastOp;
        long appliedOp;
        long lastGrant;
        boolean lost;
        long sinceOp;
    }

    private static final class Window {
        long consumed;
        /** What each instance reported billed here. */
        final Map<UUID, Long> reported = new HashMap<>();
        final Map<UUID, Hold> holds = new HashMap<>();
    }

    private final InstantSource clock;
    private final Map<Long, Limits> limits = new HashMap<>();
    private final Set<Long> cleared = new HashSet<>();
    private final Map<Account, Window> windows = new HashMap<>();
    public final AtomicInteger leases = new AtomicInteger();
    public final AtomicInteger giveBacks = new AtomicInteger();
    public volatile boolean away;
    /** Instances whose operations fail as if the store were away, for them only. */
    public final Set<UUID> cutOff = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** The faults of the next operations, in order. */
    public final Deque<Fault> faults = new ArrayDeque<>();
    private final List<Runnable> queued = new ArrayList<>();
    /** How long each lease takes, as a round trip to a busy database would. */
    public volatile java.time.Duration leaseTime = java.time.Duration.ZERO;
    private long limitsClock;

    public MemoryBudgetStore() {
        this(Clock.systemUTC());
    }

    /** @param clock the store's own clock, which decides when holds expire */
    public MemoryBudgetStore(InstantSource clock) {
        this.clock = clock;
    }

    @Override
    public synchronized void putLimits(long user, Limits limits) {
        reachable();
        this.limits.put(user, limits);
        cleared.remove(user);
    }

    @Override
    public synchronized void clearLimits(long user) {
        reachable();
        if (limits.remove(user) != null) {
            cleared.add(user);
        }
    }

    @Override
    public synchronized Optional<Limits> limitsOf(long user) {
        reachable();
        return Optional.ofNullable(limits.get(user));
    }

    @Override
    public synchronized LimitsChanges limitsChangedSince(Instant since) {
        reachable();
        return new LimitsChanges(Map.copyOf(limits), Set.copyOf(cleared), Instant.EPOCH.plusMillis(++limitsClock));
    }

    @Override
    public synchronized List<Grant> lease(Operation operation, List<Ask> asks) {
        reachable(operation);
        leases.incrementAndGet();
        if (leaseTime.isPositive()) {
            try {
                Thread.sleep(leaseTime); // the round trip
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BudgetStoreUnavailableException("interrupted", e);
            }
        }
        return faulty(() -> {
            Instant now = clock.instant();
            List<Grant> grants = new ArrayList<>();
            for (Ask ask : sorted(asks, Ask::account)) {
                Window window = windows.computeIfAbsent(ask.account(), a -> new Window());
                Hold hold = window.holds.computeIfAbsent(operation.instance(), i -> new Hold());
                if (hold.lastOp >= operation.number()) {
                    continue;
                }
                boolean gone = hold.held > 0 && !hold.expiresAt.isAfter(now);
                long own = gone ? 0 : hold.held;
                long others = others(window, operation.instance(), now);
                long free = ask.limit() - window.consumed - others - own;
                long granted = free >= ask.need() ? Math.min(ask.want(), Math.max(ask.need(), free / 2)) : 0;
                hold.held = own + granted;
                applied(hold, operation, now, granted, gone);
                grants.add(new Grant(ask.account(), granted, window.consumed + others + own + granted, window.consumed, gone));
            }
            return grants;
        });
    }

    @Override
    public synchronized List<Kept> giveBack(Operation operation, List<GiveBack> giveBacks) {
        reachable(operation);
        this.giveBacks.incrementAndGet();
        return faulty(() -> {
            Instant now = clock.instant();
            List<Kept> kept = new ArrayList<>();
            for (GiveBack back : sorted(giveBacks, GiveBack::account)) {
                Window window = windows.computeIfAbsent(back.account(), a -> new Window());
                Hold hold = window.holds.computeIfAbsent(operation.instance(), i -> new Hold());
                if (hold.lastOp >= operation.number()) {
                    continue;
                }
                boolean gone = hold.held > 0 && !hold.expiresAt.isAfter(now);
                hold.held = gone ? 0 : Math.max(0, hold.held - back.released());
                window.consumed += back.consumed();
                window.reported.merge(operation.instance(), back.consumed(), Long::sum);
                applied(hold, operation, now, 0, gone);
                kept.add(new Kept(back.account(), hold.held, gone));
            }
            return kept;
        });
    }

    @Override
    public synchronized List<Resolution> resolve(Operation operation, List<Account> accounts) {
        reachable(operation);
        return faulty(() -> {
            List<Resolution> resolutions = new ArrayList<>();
            for (Account account : sorted(accounts, a -> a)) {
                Hold hold = windows.computeIfAbsent(account, a -> new Window()).holds
                        .computeIfAbsent(operation.instance(), i -> new Hold());
                hold.lastOp = Math.max(hold.lastOp, operation.number());
                boolean applied = hold.appliedOp == operation.number();
                resolutions.add(new Resolution(account, applied, applied ? hold.lastGrant : 0, applied && hold.lost));
            }
            return resolutions;
        });
    }

    @Override
    public synchronized Map<dev.batchgateway.budget.Window, Long> consumed(long user, Map<dev.batchgateway.budget.Window, Instant> windowStarts) {
        reachable();
        Map<dev.batchgateway.budget.Window, Long> consumed = new EnumMap<>(dev.batchgateway.budget.Window.class);
        windowStarts.forEach((window, start) -> {
            Window row = windows.get(new Account(user, window, start));
            consumed.put(window, row == null ? 0 : row.consumed);
        });
        return consumed;
    }

    @Override
    public synchronized void forget(Map<dev.batchgateway.budget.Window, Instant> startedBefore) {
        reachable();
        windows.keySet().removeIf(account -> account.start().isBefore(startedBefore.get(account.window())));
    }

    /**
     * Charges a usage row's billed amounts, as its insert does in PostgreSQL (V8, budget_charge): consumed grows, and
     * the hold the request reserved from gives up as much if it is still that hold (the same since-op) and unexpired.
     * Fails like the store when it is away or the instance cut off (then the row is not written either).
     */
    public synchronized void charge(List<BudgetCharge> charges) {
        reachable();
        Instant now = clock.instant();
        for (BudgetCharge charge : charges) {
            if (cutOff.contains(charge.holder())) {
                throw new BudgetStoreUnavailableException("this instance is cut off from the budget store", null, true);
            }
        }
        for (BudgetCharge charge : charges) {
            var kind = dev.batchgateway.budget.Window.valueOf(charge.window().toUpperCase(java.util.Locale.ROOT));
            Window window = windows.computeIfAbsent(new Account(charge.account(), kind, charge.windowStart()), a -> new Window());
            window.consumed += charge.amount();
            window.reported.merge(charge.holder(), charge.amount(), Long::sum);
            Hold hold = window.holds.get(charge.holder());
            if (hold != null && hold.sinceOp == charge.holdSince() && hold.expiresAt.isAfter(now)) {
                hold.held = Math.max(0, hold.held - charge.amount());
            }
        }
    }

    /**
     * Writes a usage row for an answer that waits for it, as {@code usage_record_on_live_holds} does in PostgreSQL
     * (V20): only if every hold it charges is live (the same since-op, not expired), its charges move from those holds
     * to consumed; else nothing changes and the row is refused. Fails like the store when it is away or the instance
     * cut off.
     *
     * @return whether the row was written (and charged)
     */
    public synchronized boolean chargeOnLiveHolds(List<BudgetCharge> charges) {
        reachable();
        for (BudgetCharge charge : charges) {
            if (cutOff.contains(charge.holder())) {
                throw new BudgetStoreUnavailableException("this instance is cut off from the budget store", null, true);
            }
        }
        return chargeIfLive(charges);
    }

    /**
     * A usage write that timed out on the gateway's side: it commits now, never, or when {@link #commitQueued} runs
     * (and then only if its holds are live); {@code written} hears of it when it commits.
     */
    public synchronized void chargeTimedOut(List<BudgetCharge> charges, Fault fault, Runnable written) {
        switch (fault) {
            case COMMITTED -> {
                if (chargeIfLive(charges)) {
                    written.run();
                }
            }
            case NOT_COMMITTED -> { }
            case QUEUED -> queued.add(() -> {
                if (chargeIfLive(charges)) {
                    written.run();
                }
            });
        }
    }

    private boolean chargeIfLive(List<BudgetCharge> charges) {
        Instant now = clock.instant();
        for (BudgetCharge charge : charges) {
            var kind = dev.batchgateway.budget.Window.valueOf(charge.window().toUpperCase(java.util.Locale.ROOT));
            Window window = windows.get(new Account(charge.account(), kind, charge.windowStart()));
            Hold hold = window == null ? null : window.holds.get(charge.holder());
            if (hold == null || hold.sinceOp != charge.holdSince() || !hold.expiresAt.isAfter(now)) {
                return false;
            }
        }
        for (BudgetCharge charge : charges) {
            var kind = dev.batchgateway.budget.Window.valueOf(charge.window().toUpperCase(java.util.Locale.ROOT));
            Window window = windows.get(new Account(charge.account(), kind, charge.windowStart()));
            window.consumed += charge.amount();
            window.reported.merge(charge.holder(), charge.amount(), Long::sum);
            Hold hold = window.holds.get(charge.holder());
            hold.held = Math.max(0, hold.held - charge.amount());
        }
        return true;
    }

    /** Commits the operations queued behind a lock, in order; those fenced meanwhile change nothing. */
    public synchronized void commitQueued() {
        List<Runnable> now = new ArrayList<>(queued);
        queued.clear();
        now.forEach(Runnable::run);
    }

    /** A window's row: taken (billed plus every unexpired hold, on the store's clock) and billed. */
    public synchronized Row row(long user, dev.batchgateway.budget.Window window, Instant start) {
        Window row = windows.get(new Account(user, window, start));
        Row copy = new Row();
        if (row != null) {
            copy.consumed = row.consumed;
            copy.granted = row.consumed + others(row, null, clock.instant());
        }
        return copy;
    }

    /** What the instances hold in a window, expired or not: what a crash may leave until its holds expire. */
    public synchronized long heldByAll(long user, dev.batchgateway.budget.Window window, Instant start) {
        Window row = windows.get(new Account(user, window, start));
        return row == null ? 0 : row.holds.values().stream().mapToLong(hold -> hold.held).sum();
    }

    /** What one instance's hold keeps in a window and the store counts as taken: nothing once expired. */
    public synchronized long heldUnexpired(UUID instance, long user, dev.batchgateway.budget.Window window, Instant start) {
        Window row = windows.get(new Account(user, window, start));
        Hold hold = row == null ? null : row.holds.get(instance);
        return hold == null || !hold.expiresAt.isAfter(clock.instant()) ? 0 : hold.held;
    }

    /** Whether an instance's hold in a window holds something and has expired (the store counts it as free). */
    public synchronized boolean expired(UUID instance, long user, dev.batchgateway.budget.Window window, Instant start) {
        Window row = windows.get(new Account(user, window, start));
        Hold hold = row == null ? null : row.holds.get(instance);
        return hold != null && hold.held > 0 && !hold.expiresAt.isAfter(clock.instant());
    }

    /** Whether one instance's hold of a window is the one started by {@code since} and has not expired. */
    public synchronized boolean live(UUID instance, long user, dev.batchgateway.budget.Window window, Instant start, long since) {
        Window row = windows.get(new Account(user, window, start));
        Hold hold = row == null ? null : row.holds.get(instance);
        return hold != null && hold.sinceOp == since && hold.expiresAt.isAfter(clock.instant());
    }

    /** The operation that started one instance's hold of a window (0: the first hold, or none). */
    public synchronized long sinceOp(UUID instance, long user, dev.batchgateway.budget.Window window, Instant start) {
        Window row = windows.get(new Account(user, window, start));
        Hold hold = row == null ? null : row.holds.get(instance);
        return hold == null ? 0 : hold.sinceOp;
    }

    /** What one instance reported billed in a window. */
    public synchronized long reportedBy(UUID instance, long user, dev.batchgateway.budget.Window window, Instant start) {
        Window row = windows.get(new Account(user, window, start));
        return row == null ? 0 : row.reported.getOrDefault(instance, 0L);
    }

    /** The next operation (a lease, give-back or resolution) times out so. */
    public synchronized void fault(Fault fault) {
        faults.add(fault);
    }

    public synchronized boolean faultsPending() {
        return !faults.isEmpty();
    }

    /** What one instance's hold keeps in a window, expired or not. */
    public synchronized long held(UUID instance, long user, dev.batchgateway.budget.Window window, Instant start) {
        Window row = windows.get(new Account(user, window, start));
        Hold hold = row == null ? null : row.holds.get(instance);
        return hold == null ? 0 : hold.held;
    }

    private long others(Window window, UUID instance, Instant now) {
        return window.holds.entrySet().stream()
                .filter(e -> !e.getKey().equals(instance) && e.getValue().expiresAt.isAfter(now))
                .mapToLong(e -> e.getValue().held).sum();
    }

    private static void applied(Hold hold, Operation operation, Instant now, long granted, boolean lost) {
        if (lost) {
            hold.sinceOp = operation.number();
        }
        hold.expiresAt = now.plus(operation.expiry());
        hold.lastOp = operation.number();
        hold.appliedOp = operation.number();
        hold.lastGrant = granted;
        hold.lost = lost;
    }

    /** Applies an operation, or not, as the next fault says; a timed-out one throws whatever it did. */
    private <T> T faulty(Supplier<T> operation) {
        Fault fault = faults.poll();
        if (fault == null) {
            return operation.get();
        }
        switch (fault) {
            case COMMITTED -> operation.get();
            case NOT_COMMITTED -> { }
            case QUEUED -> queued.add(operation::get);
        }
        throw new BudgetStoreUnavailableException("the budget store did not answer in time (" + fault + ")", null);
    }

    private static <T> List<T> sorted(List<T> items, java.util.function.Function<T, Account> account) {
        return items.stream().sorted(Comparator.comparing(account, Comparator.comparingLong(Account::user)
                .thenComparing(Account::window).thenComparing(Account::start))).toList();
    }

    private void reachable(Operation operation) {
        reachable();
        if (cutOff.contains(operation.instance())) {
            throw new BudgetStoreUnavailableException("this instance is cut off from the budget store", null, true);
        }
    }

    private void reachable() {
        if (away) {
            throw new BudgetStoreUnavailableException("the budget store is away", null, true); // refuses connections
        }
    }
}
