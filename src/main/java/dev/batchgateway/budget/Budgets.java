package dev.batchgateway.budget;

import dev.batchgateway.completion.Admission;
import dev.batchgateway.completion.BudgetCharge;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.Payer;
import dev.batchgateway.completion.Settlement;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.TokenBound;
import dev.batchgateway.completion.TokenUsage;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Per-user budgets and rate limits, exact across every gateway instance that shares the {@link BudgetStore}.
 *
 * <p>At admission a request <b>reserves</b> an upper bound of what it can cost in each limited window of its user:
 * one request per minute, and {@linkplain TokenBound its tokens} per day and month. When the scheduler
 * {@link #settled settles} it, the reservation becomes what was billed (the rest is free again); a request that never
 * reached the worker, or that the worker failed, gives it all back. What is billed is {@linkplain #charges charged} to
 * the store in the commit of the request's usage row, leaving this instance's hold there. So, per user and window,
 * billed + reserved never exceeds what the store counts.
 *
 * <p>What an instance holds it <b>leases</b> from the store: a slice of the window's budget, in one atomic statement
 * that never grants beyond the limit. The hot path reserves from the slice in memory; the store is asked only when a
 * slice runs short. Unused parts go back to the store when the slice has been idle for {@code idleReturn}, is older
 * than {@code maxLeaseAge} (when the store could not give all that was asked: the budget is tight) or than {@code
 * maxAmpleLeaseAge}, its window is over, or the user's limits changed ({@link Upkeep}; the leases themselves go through
 * the {@link Leaser}). Every instance's reserved + unused is part of what the store granted, which with what was billed
 * never exceeds the limit: the invariant holds across instances, whatever the interleaving.
 *
 * <p>An instance holds its slices under its own id with an expiry (the store counts an expired hold as free again),
 * renewed by every lease and give-back and at least every third of the expiry; it reserves from a slice only while
 * its last renewal, counted from when it was sent, is younger than the expiry less a margin ({@link Lessee}). Leases
 * and give-backs are numbered operations applied at most once; one whose outcome is unknown is resolved by asking the
 * store, never sent again.
 *
 * <p>While the store is away an instance admits from what it holds, and refuses what needs more ({@link
 * BudgetUnavailableException}): it fails closed. An answer's usage is charged only to a hold the instance can still
 * count on ({@link #charges}), in the store's commit of its usage row: while the store is away no answer of a limited
 * user leaves, so nothing is ever billed on a hold the store may have let expire.
 */
public final class Budgets implements Admission, Settlement, AutoCloseable {

    private static final System.Logger LOG = System.getLogger(Budgets.class.getName());
    /** How long a request waits for a lease before it gets 503. */
    private static final long LEASE_WAIT_MILLIS = 10_000;
    /** How long the store keeps a hold this instance does not renew: then its slices are everyone's again. */
    public static final Duration DEFAULT_LEASE_EXPIRY = Duration.ofSeconds(30);

    /**
     * How leases live.
     *
     * @param idleReturn a slice nobody reserved from for this long goes back to the store
     * @param maxLeaseAge a slice of a tight budget (the store gave less than asked) this old goes back, used or not,
     *     so that no instance keeps part of a nearly spent budget for long; billed amounts are reported this often
     * @param maxAmpleLeaseAge a slice of an ample budget this old goes back, used or not
     * @param flushEvery how often slices due are given back and billed amounts reported, in one round trip
     * @param limitsEvery how often users' limits are read again (a change applies within this and a flush)
     * @param forgetEvery how often windows long over are deleted from the store
     */
    public record Timing(Duration idleReturn, Duration maxLeaseAge, Duration maxAmpleLeaseAge, Duration flushEvery,
            Duration limitsEvery, Duration forgetEvery) {
        public static final Timing DEFAULT = new Timing(Duration.ofSeconds(1), Duration.ofSeconds(3), Duration.ofSeconds(30),
                Duration.ofMillis(250), Duration.ofSeconds(1), Duration.ofMinutes(10));

        public Timing {
            for (Duration d : List.of(idleReturn, maxLeaseAge, maxAmpleLeaseAge, flushEvery, limitsEvery, forgetEvery)) {
                if (!d.isPositive()) {
                    throw new IllegalArgumentException("lease timings must be positive, was " + d);
                }
            }
        }

        /** How soon a budget held by other instances or requests in flight is back: a slice's idle time and a flush. */
        Duration heldFor() {
            return idleReturn.plus(flushEvery);
        }
    }

    /** A user's limits and whether they are the user's own (else the defaults). */
    public record UserLimits(long user, Limits limits, boolean own) {}

    /**
     * A user's limits and, in the current windows, what a request can use: the limit less what all instances reported
     * billed and less what this instance's requests in flight have {@code reserved} (they may be billed up to that).
     * Only limited windows have these amounts. Other instances' requests in flight are not seen here: what they hold is
     * back within {@link Timing#heldFor()} once they settle.
     */
    public record Standing(Limits limits, Map<Window, Long> remaining, Map<Window, Long> reserved) {
        public Standing {
            remaining = Map.copyOf(remaining);
            reserved = Map.copyOf(reserved);
        }
    }

    private final BudgetStore store;
    private final InstantSource clock;
    private final Timing timing;
    private final Ticker ticker;
    private final Lessee lessee;
    private final StoreStatus status = new StoreStatus();
    private final UserBudgets users = new UserBudgets();
    private final LimitsCache limits;
    private final Leaser leaser;
    private final Upkeep upkeep;
    private final Map<UUID, Reservation> reservations = new ConcurrentHashMap<>();
    /** Requests' reservations in their keys' own budgets (a key with limits of its own), beside their users'. */
    private final Map<UUID, Reservation> keyReservations = new ConcurrentHashMap<>();
    private volatile WindowStarts lastStarts;

    /** @param defaults the limits of users without their own */
    public Budgets(BudgetStore store, Limits defaults, InstantSource clock, Timing timing) {
        this(store, defaults, clock, Ticker.system(), timing, DEFAULT_LEASE_EXPIRY);
    }

    /**
     * @param ticker measures how long a hold is counted on (monotonic)
     * @param leaseExpiry how long the store keeps a hold this instance does not renew
     */
    public Budgets(BudgetStore store, Limits defaults, InstantSource clock, Ticker ticker, Timing timing, Duration leaseExpiry) {
        this.store = Objects.requireNonNull(store, "store");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.timing = Objects.requireNonNull(timing, "timing");
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        this.lessee = new Lessee(store, UUID.randomUUID(), leaseExpiry, ticker);
        this.limits = new LimitsCache(store, defaults, status, this::limitsChanged);
        this.leaser = new Leaser(store, lessee, status, users, clock);
        this.upkeep = new Upkeep(store, lessee, status, users, limits, clock, ticker, timing);
    }

    /** Reads the users' limits, then gives back, reports and re-reads in the background until {@link #close}. */
    public Budgets start() {
        try {
            limits.refreshLimits();
        } catch (BudgetUnavailableException away) {
            LOG.log(System.Logger.Level.WARNING, "users' limits could not be read yet; limited requests get 503 until they are");
        }
        upkeep.start();
        return this;
    }

    // --- admission

    /**
     * Admits the requests of one call, all or none, under its user's limits and, for a key with limits of its own,
     * the key's ({@link #keyAccount}).
     *
     * @throws LimitExceededException when a limit leaves no room for them (it says whose)
     * @throws BudgetUnavailableException when more budget is needed and the store is away
     */
    @Override
    public void admit(Payer payer, List<CompletionRequest> requests) {
        switch (payer) {
            case Payer.User user -> admit(user.user(), requests);
            case Payer.LimitedKey key -> admit(key.user(), keyAccount(key.keyId()),
                    new Limits(key.tokensPerDay(), key.tokensPerMonth(), key.requestsPerMinute()), requests);
        }
    }

    /**
     * Admits the requests of one call of a user, all or none: each reserves its bound in every limited window. Every
     * request admitted must then be submitted to the scheduler, which {@linkplain #settled settles} it, or be
     * {@linkplain #release released}.
     *
     * @throws LimitExceededException when a limit leaves no room for them
     * @throws BudgetUnavailableException when more budget is needed and the store is away
     */
    public void admit(long user, List<CompletionRequest> requests) {
        admit(user, limitsOf(user), requests, reservations);
    }

    /**
     * Admits the requests of one call made with a key that has limits of its own, all or none: each reserves its bound
     * in every limited window of its user and of the key ({@link #keyAccount}, with {@code keyLimits}). A 429 says
     * whose limit refused it.
     */
    public void admit(long user, long key, Limits keyLimits, List<CompletionRequest> requests) {
        if (!isKey(key)) {
            throw new IllegalArgumentException("not a key's budget account: " + key);
        }
        admit(user, requests);
        try {
            admit(key, keyLimits, requests, keyReservations);
        } catch (RuntimeException refused) {
            requests.forEach(this::release); // the user's reservations: the call is admitted whole or not at all
            throw refused;
        }
    }

    /** The budget account of a key's own limits: negative, apart from every user's. */
    public static long keyAccount(UUID keyId) {
        return -1 - (keyId.getMostSignificantBits() & Long.MAX_VALUE);
    }

    /** Whether a budget account is a key's (else a user's). */
    static boolean isKey(long account) {
        return account < 0;
    }

    private void admit(long account, Limits limits, List<CompletionRequest> requests, Map<UUID, Reservation> into) {
        if (requests.isEmpty() || limits.unlimited()) {
            return;
        }
        long[] bounds = new long[requests.size()];
        long tokens = 0;
        for (int i = 0; i < bounds.length; i++) {
            bounds[i] = TokenBound.of(requests.get(i));
            tokens = Math.addExact(tokens, bounds[i]);
        }
        UserBudget budget = users.lock(account);
        try {
            admit(budget, limits, requests, bounds, tokens, into);
        } finally {
            budget.lock.unlock();
        }
    }

    /** An admitted request that was not submitted after all: what it reserved is free again. */
    @Override
    public void release(CompletionRequest request) {
        settled(request, null);
    }

    /** The scheduler's word on what a request costs: its reservation becomes that, the rest is free again. */
    @Override
    public void settled(CompletionRequest request, TokenUsage billed) {
        settled(keyReservations.remove(request.requestId()), billed);
        settled(reservations.remove(request.requestId()), billed);
    }

    private static void settled(Reservation reservation, TokenUsage billed) {
        if (reservation == null) {
            return; // an unlimited user's (or key's) request, or one already settled
        }
        reservation.budget.lock.lock();
        try {
            for (Hold hold : reservation.holds) {
                hold.lease.settle(hold.amount, spent(hold, billed), reservation.charged && billed != null);
            }
        } finally {
            reservation.budget.lock.unlock();
        }
    }

    /**
     * What billing {@code usage} costs each window the request reserved from, charged in its usage row's commit: there
     * it leaves this instance's hold and counts as billed at once, so a crash of this instance can never make it free
     * again. The request's settlement with that usage then only frees what it reserved beyond it.
     *
     * @throws CompletionRejectedException when a hold it reserved from is no longer one this instance can count on:
     *     lost (the store let it expire), or not renewed recently enough ({@link Lessee}: the store may count it as
     *     free before the row could be written). Its usage cannot be accounted: the answer must not leave, and the
     *     request is settled with nothing billed.
     */
    @Override
    public List<BudgetCharge> charges(CompletionRequest request, TokenUsage usage) {
        List<BudgetCharge> charges = new ArrayList<>(6);
        long nowNanos = ticker.nanoTime();
        for (Map<UUID, Reservation> reserved : List.of(reservations, keyReservations)) {
            Reservation reservation = reserved.computeIfPresent(request.requestId(),
                    (id, held) -> new Reservation(held.budget, held.holds, true));
            if (reservation == null) {
                continue; // an unlimited user's (or key's) request, or one already settled
            }
            reservation.budget.lock.lock();
            try {
                for (Hold hold : reservation.holds) {
                    if (hold.lease.lost || !hold.lease.backedAt(nowNanos)) {
                        throw new CompletionRejectedException(CompletionRejectedException.Reason.USAGE_UNACCOUNTED,
                                StoreStatus.RETRY_AFTER);
                    }
                    BudgetStore.Account account = hold.lease.account;
                    charges.add(new BudgetCharge(account.user(), lessee.id(), hold.lease.holdSince, account.window().word(),
                            account.start(), spent(hold, usage)));
                }
            } finally {
                reservation.budget.lock.unlock();
            }
        }
        return charges;
    }

    private static long spent(Hold hold, TokenUsage billed) {
        return billed == null ? 0 : hold.lease.account.window().countsRequests() ? 1 : billed.totalTokens();
    }

    private void admit(UserBudget budget, Limits limits, List<CompletionRequest> requests, long[] bounds, long tokens,
            Map<UUID, Reservation> into) {
        long waitUntil = ticker.nanoTime() + TimeUnit.MILLISECONDS.toNanos(LEASE_WAIT_MILLIS);
        while (true) {
            Instant now = clock.instant();
            WindowStarts starts = windowStarts(now);
            List<Need> needs = new ArrayList<>(3);
            for (Window window : Window.values()) {
                Long limit = limits.of(window);
                if (limit != null) {
                    needs.add(new Need(budget.lease(window, starts.of(window)), limit,
                            window.countsRequests() ? requests.size() : tokens));
                }
            }
            List<Need> lacking = lacking(needs, ticker.nanoTime());
            if (lacking.isEmpty()) {
                reserve(budget, needs, requests, bounds, now.toEpochMilli(), into);
                return;
            }
            List<Need> hopeless = lacking.stream().filter(need -> need.amount > need.limit).toList();
            if (!hopeless.isEmpty()) {
                throw refusal(hopeless, now, requests); // more than the whole limit: no lease can help
            }
            if (budget.leasing != null) {
                // another request of this user is leasing: its grant may be enough for this one too
                awaitLease(budget, waitUntil);
                continue;
            }
            if (leaseMore(budget, lacking, now, waitUntil)) {
                continue; // every window got what it lacked; requests that fit meanwhile may have used some of it
            }
            if (needs.stream().anyMatch(need -> need.lease.lost)) {
                continue; // the lease found a slice expired and replaced it: look again at the new one
            }
            lacking = lacking(needs, ticker.nanoTime());
            if (lacking.isEmpty()) {
                reserve(budget, needs, requests, bounds, now.toEpochMilli(), into);
                return;
            }
            throw refusal(lacking, now, requests);
        }
    }

    /** The windows that hold an instant; the same for a whole minute, so computed once a minute. */
    private record WindowStarts(Instant minute, Instant nextMinute, Instant day, Instant month) {
        static WindowStarts of(Instant now) {
            Instant minute = Window.MINUTE.start(now);
            return new WindowStarts(minute, Window.MINUTE.end(minute), Window.DAY.start(now), Window.MONTH.start(now));
        }

        Instant of(Window window) {
            return switch (window) {
                case MINUTE -> minute;
                case DAY -> day;
                case MONTH -> month;
            };
        }
    }

    private WindowStarts windowStarts(Instant now) {
        WindowStarts starts = lastStarts;
        if (starts == null || now.isBefore(starts.minute()) || !now.isBefore(starts.nextMinute())) {
            starts = WindowStarts.of(now);
            lastStarts = starts;
        }
        return starts;
    }

    /** The needs a slice cannot cover now: too little free, or a hold not renewed recently enough to count on. */
    private static List<Need> lacking(List<Need> needs, long nowNanos) {
        List<Need> lacking = new ArrayList<>(needs.size());
        for (Need need : needs) {
            need.lease.reclaimUnused(need.amount);
            if (need.lease.free < need.amount || !need.lease.backedAt(nowNanos)) {
                lacking.add(need);
            }
        }
        return lacking;
    }

    private static void reserve(UserBudget budget, List<Need> needs, List<CompletionRequest> requests, long[] bounds,
            long nowMillis, Map<UUID, Reservation> into) {
        for (Need need : needs) {
            need.lease.reserve(need.amount, nowMillis);
        }
        for (int i = 0; i < requests.size(); i++) {
            List<Hold> holds = new ArrayList<>(needs.size());
            for (Need need : needs) {
                holds.add(new Hold(need.lease, need.lease.account.window().countsRequests() ? 1 : bounds[i]));
            }
            into.put(requests.get(i).requestId(), new Reservation(budget, holds, false));
        }
    }

    /** Waits, with the user's lock released, until the lease in flight for this user is done. */
    private void awaitLease(UserBudget budget, long waitUntilNanos) {
        long left = waitUntilNanos - ticker.nanoTime();
        try {
            if (left <= 0 || !budget.leased.await(left, TimeUnit.NANOSECONDS)) {
                throw new BudgetUnavailableException("the budget store did not answer in time", StoreStatus.RETRY_AFTER, null);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BudgetUnavailableException("interrupted while waiting for budget", StoreStatus.RETRY_AFTER, e);
        }
    }

    /**
     * Leases what the lacking windows need and waits for it, the user's lock released meanwhile (requests that fit in
     * what is held go on). The leases of all users waiting at the same moment go to the store in one statement (at a
     * minute's turn, every busy user needs a new minute at once), and the grants are applied to the user's slices by
     * the leaser, whether or not this request still waits for them: nothing granted is ever lost.
     *
     * @return whether every window got at least what it lacked; false when a limit leaves no room
     */
    private boolean leaseMore(UserBudget budget, List<Need> lacking, Instant now, long waitUntilNanos) {
        long nowMillis = now.toEpochMilli();
        if (!status.mayTry(nowMillis)) {
            // the store is away and another request tried it within the last second: no need to wait for it again
            throw new BudgetUnavailableException(
                    "the budget store is unavailable and this gateway holds no budget left for this request; try again later",
                    StoreStatus.RETRY_AFTER, null);
        }
        List<BudgetStore.Ask> asks = new ArrayList<>(lacking.size());
        for (Need need : lacking) {
            // a slice not counted on any more is renewed by the lease, which asks at least one more
            long shortBy = Math.max(1, need.amount - need.lease.free);
            // a slice for a few more like it, or twice what was reserved since the last lease: a busy user's slices double
            // until they last, and what a slice holds beyond its use goes back when idle or old
            long want = saturatedAdd(shortBy, Math.max(saturatedMultiply(3, need.amount), saturatedMultiply(2, need.lease.recentDemand())));
            asks.add(new BudgetStore.Ask(need.lease.account, need.limit, shortBy, want));
        }
        var pending = new PendingLease(budget, asks, nowMillis);
        budget.leasing = pending;
        leaser.lease(pending);
        while (budget.leasing == pending) {
            awaitLease(budget, waitUntilNanos);
        }
        if (pending.failure != null) {
            throw new BudgetUnavailableException(
                    "the budget store is unavailable and this gateway holds no budget left for this request; try again later",
                    StoreStatus.RETRY_AFTER, pending.failure);
        }
        return pending.enough;
    }

    private LimitExceededException refusal(List<Need> lacking, Instant now, List<CompletionRequest> requests) {
        TokenBound.Parts reserved = new TokenBound.Parts(0, 0, 0);
        for (CompletionRequest request : requests) {
            reserved = reserved.plus(TokenBound.parts(request));
        }
        LimitExceededException latest = null;
        for (Need need : lacking) {
            Lease lease = need.lease;
            // free now: what nobody leased, and what this instance holds unreserved (too little: given back)
            long free = Math.max(0, need.limit - lease.grantedAtStore) + lease.free + lease.unused;
            lease.giveUpFree();
            // not billed yet: the rest is reserved by requests in flight or held by other instances, and may come back
            boolean soon = need.limit - lease.billedAsKnown() >= need.amount;
            Duration retryAfter = soon ? wholeSeconds(timing.heldFor()) : wholeSeconds(Duration.between(now, lease.end));
            var refusal = new LimitExceededException(
                    lease.account.window(), need.limit, Math.min(free, need.amount - 1), need.amount, lease.end, retryAfter, soon,
                    isKey(lease.account.user()), reserved, requests.size());
            if (latest == null || refusal.retryAfter().compareTo(latest.retryAfter()) > 0) {
                latest = refusal;
            }
        }
        return latest;
    }

    // --- limits

    /** A user's limits and what remains of them in the current windows. */
    public Standing standing(long user) {
        Limits limits = limitsOf(user);
        Instant now = clock.instant();
        Map<Window, Instant> starts = new EnumMap<>(Window.class);
        for (Window window : Window.values()) {
            if (limits.of(window) != null) {
                starts.put(window, window.start(now));
            }
        }
        if (starts.isEmpty()) {
            return new Standing(limits, Map.of(), Map.of());
        }
        Map<Window, Long> billed;
        try {
            billed = new EnumMap<>(store.consumed(user, starts));
        } catch (BudgetStoreUnavailableException away) {
            throw new BudgetUnavailableException("the budget store is unavailable; try again later", StoreStatus.RETRY_AFTER, away);
        }
        Map<Window, Long> reserved = new EnumMap<>(Window.class);
        starts.keySet().forEach(window -> reserved.put(window, 0L));
        UserBudget budget = users.get(user);
        if (budget != null) {
            budget.lock.lock();
            try {
                for (Lease lease : budget.leases.values()) {
                    if (lease.account.start().equals(starts.get(lease.account.window()))) {
                        billed.merge(lease.account.window(), lease.consumed, Long::sum); // billed here, not yet reported
                        reserved.merge(lease.account.window(), lease.reserved, Long::sum);
                    }
                }
            } finally {
                budget.lock.unlock();
            }
        }
        Map<Window, Long> remaining = new EnumMap<>(Window.class);
        starts.keySet().forEach(window -> remaining.put(window,
                Math.max(0, limits.of(window) - billed.getOrDefault(window, 0L) - reserved.get(window))));
        return new Standing(limits, remaining, reserved);
    }

    // --- giving back

    /** Stops the upkeep and gives back everything held. */
    @Override
    public void close() throws InterruptedException {
        upkeep.close();
        leaser.close();
        try {
            giveBackEverything();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "giving back budget at shutdown failed", e);
        }
    }

    // --- limits

    /** The limits that apply to a user: its own, else the defaults. */
    public Limits limitsOf(long user) {
        return limits.limitsOf(user);
    }

    /** A user's limits as the store has them now, for the operator. */
    public UserLimits limits(long user) {
        return limits.limits(user);
    }

    /** Sets a user's own limits: here at once, on every other instance within {@code limitsEvery} and a flush. */
    public UserLimits setLimits(long user, Limits limits) {
        return this.limits.setLimits(user, limits);
    }

    /** Puts a user back on the defaults: here at once, on every other instance within {@code limitsEvery} and a flush. */
    public UserLimits clearLimits(long user) {
        return limits.clearLimits(user);
    }

    /** Reads the limits changed since the last read; the last known ones stay while the store is away. */
    public void refreshLimits() {
        limits.refreshLimits();
    }

    private void limitsChanged(long user) {
        UserBudget budget = users.get(user);
        if (budget != null) {
            budget.limitsChanged = true; // what it holds was leased under the old limits: given back at the next flush
        }
    }

    // --- giving back

    /** Gives back the slices that are due and reports billed amounts the slow way, in one round trip. */
    public void flush() {
        upkeep.flush();
    }

    /** Gives back everything held and reports everything billed: at shutdown, once no request is in flight any more. */
    public void giveBackEverything() {
        upkeep.giveBackEverything();
    }

    /** Deletes the store's windows that are long over: minutes after an hour, days after a week, months after a year. */
    public void forgetOldWindows() {
        upkeep.forgetOldWindows();
    }

    // --- for tests and metrics

    /** This instance's id as the store's lessee: a random UUID per start. */
    UUID instanceId() {
        return lessee.id();
    }

    /** Whether a request in flight reserved in a window from a slice whose hold the store let expire. */
    boolean reservedOnLostSlice(CompletionRequest request, Window window) {
        Reservation reservation = reservations.get(request.requestId());
        if (reservation == null) {
            return false;
        }
        reservation.budget.lock.lock();
        try {
            return reservation.holds.stream().anyMatch(hold -> hold.lease.account.window() == window && hold.lease.lost);
        } finally {
            reservation.budget.lock.unlock();
        }
    }

    /** Whether a lease or give-back of this instance has an outcome it does not know yet. */
    boolean inDoubt() {
        return lessee.inDoubt();
    }

    /**
     * What this instance counts as its own in a window, which its hold in the store must keep: free, reserved, on its
     * way back, and billed unreported (less what was spent beyond it); zero for a slice the store let expire.
     */
    long holding(long user, Window window, Instant start) {
        UserBudget budget = users.get(user);
        if (budget == null) {
            return 0;
        }
        budget.lock.lock();
        try {
            Lease lease = budget.leases.get(new BudgetStore.Account(user, window, start));
            return lease == null ? 0 : lease.free + lease.reserved + lease.unused + lease.consumed - lease.overdraft;
        } finally {
            budget.lock.unlock();
        }
    }

    /** What this instance holds of a user's current window: free for reservations, and reserved by requests in flight. */
    public record Held(long free, long reserved) {}

    /** What this instance holds of a user's current window; empty when it holds nothing there. */
    public Optional<Held> held(long user, Window window) {
        UserBudget budget = users.get(user);
        if (budget == null) {
            return Optional.empty();
        }
        budget.lock.lock();
        try {
            Lease lease = budget.leases.get(new BudgetStore.Account(user, window, window.start(clock.instant())));
            return lease == null ? Optional.empty() : Optional.of(new Held(lease.free, lease.reserved));
        } finally {
            budget.lock.unlock();
        }
    }

    // --- state

    private static Duration wholeSeconds(Duration duration) {
        long seconds = (duration.toMillis() + 999) / 1000;
        return Duration.ofSeconds(Math.max(1, seconds));
    }

    private static long saturatedAdd(long a, long b) {
        long sum = a + b;
        return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
    }

    private static long saturatedMultiply(long a, long b) {
        long high = Math.multiplyHigh(a, b);
        long product = a * b;
        return high != 0 || product < 0 ? Long.MAX_VALUE : product;
    }

    private record Need(Lease lease, long limit, long amount) {}

    private record Hold(Lease lease, long amount) {}

    /** What a request reserved; {@code charged}: its usage row carries its charges (they are not reported again). */
    private record Reservation(UserBudget budget, List<Hold> holds, boolean charged) {}

}
