package dev.batchgateway.budget;

import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.Settlement;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.TokenUsage;
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
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Per-user budgets and rate limits, exact across every gateway instance that shares the {@link BudgetStore}.
 *
 * <p>At admission a request <b>reserves</b> an upper bound of what it can cost in each limited window of its user:
 * one request per minute, and {@link #bound its tokens} per day and month. When the scheduler
 * {@link #settled settles} it, the reservation becomes what was billed (the rest is free again); a request that never
 * reached the worker, or that the worker failed, gives it all back. So, per user and window, billed + reserved never
 * exceeds what this instance holds.
 *
 * <p>What an instance holds it <b>leases</b> from the store: a slice of the window's budget, in one atomic statement
 * that never grants beyond the limit. The hot path reserves from the slice in memory; the store is asked only when a
 * slice runs short. Unused parts go back to the store when the slice has been idle for {@code idleReturn}, is older
 * than {@code maxLeaseAge} (when the store could not give all that was asked: the budget is tight) or than {@code
 * maxAmpleLeaseAge}, its window is over, or the user's limits changed; billed amounts are reported with them, and at
 * least every {@code maxLeaseAge}.
 * Every instance's billed + reserved + unused is part of what the store granted, which never exceeds the limit: the
 * invariant holds across instances, whatever the interleaving.
 *
 * <p>An instance holds its slices under its own id with an expiry (the store counts an expired hold as free again),
 * renewed by every lease and give-back and at least every third of the expiry; it reserves from a slice only while
 * its last renewal, counted from when it was sent, is younger than the expiry less a margin ({@link Lessee}). Leases
 * and give-backs are numbered operations applied at most once; one whose outcome is unknown is resolved by asking the
 * store, never sent again.
 *
 * <p>While the store is away an instance serves from what it holds, and refuses what needs more ({@link
 * BudgetUnavailableException}): it fails closed.
 */
public final class Budgets implements Settlement, AutoCloseable {

    /** Tokens a text may need beside one per UTF-8 byte (byte-level tokenizers): BOS, EOS and other special tokens. */
    static final int TEXT_ALLOWANCE = 16;
    /** Tokens a chat message may need beside its bytes: the template's role header and end-of-turn tokens. */
    static final int MESSAGE_ALLOWANCE = 16;
    /** Tokens a chat template may add once: a default system prompt, the assistant's header. */
    static final int CHAT_ALLOWANCE = 256;

    private static final System.Logger LOG = System.getLogger(Budgets.class.getName());
    /** Limits changed this long before the last read are read again: a write may commit after a read began. */
    private static final Duration LIMITS_OVERLAP = Duration.ofSeconds(10);
    private static final Duration STORE_RETRY_AFTER = Duration.ofSeconds(5);
    /** While the store is away, one lease in the gateway is tried at most this often; others short of budget get 503. */
    private static final long PROBE_EVERY_MILLIS = 1000;
    /** The longest pause between the upkeep's tries while the store is away. */
    private static final Duration MAX_AWAY_PAUSE = Duration.ofSeconds(5);
    private static final long LEASE_WAIT_MILLIS = 10_000;
    /** The most windows leased in one statement. */
    private static final int ASKS_PER_LEASE = 1000;
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
    private final Limits defaults;
    private final InstantSource clock;
    private final Timing timing;
    private final Ticker ticker;
    private final Lessee lessee;
    private final long renewEveryNanos;

    private final Map<Long, Limits> own = new ConcurrentHashMap<>();
    private final Object limitsLock = new Object();
    private volatile Instant limitsReadAt;
    private final Map<Long, UserBudget> users = new ConcurrentHashMap<>();
    private final Map<UUID, Reservation> reservations = new ConcurrentHashMap<>();
    private final Object flushLock = new Object();
    private volatile boolean storeAway;
    private final BlockingQueue<PendingLease> leaseQueue = new LinkedBlockingQueue<>();
    private volatile Thread leaser;
    private volatile WindowStarts lastStarts;
    private final AtomicLong nextProbeAt = new AtomicLong();
    private Thread keeper;

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
        this.defaults = Objects.requireNonNull(defaults, "defaults");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.timing = Objects.requireNonNull(timing, "timing");
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        this.lessee = new Lessee(store, UUID.randomUUID(), leaseExpiry, ticker);
        this.renewEveryNanos = leaseExpiry.dividedBy(3).toNanos();
    }

    /** Reads the users' limits, then gives back, reports and re-reads in the background until {@link #close}. */
    public Budgets start() {
        try {
            refreshLimits();
        } catch (BudgetUnavailableException away) {
            LOG.log(System.Logger.Level.WARNING, "users' limits could not be read yet; limited requests get 503 until they are");
        }
        keeper = Thread.ofVirtual().name("budget-keeper").start(this::keep);
        return this;
    }

    // --- admission

    /**
     * An upper bound of the tokens a request can cost: at most one token per UTF-8 byte of its prompt (byte-level
     * tokenizers), an allowance for special tokens and a chat's template, and its {@code max_tokens}.
     */
    public static long bound(CompletionRequest request) {
        long prompt = switch (request.prompt()) {
            case Prompt.Text text -> utf8Bytes(text.text()) + TEXT_ALLOWANCE;
            case Prompt.Chat chat -> {
                long bytes = CHAT_ALLOWANCE;
                for (Prompt.Message message : chat.messages()) {
                    bytes += utf8Bytes(message.role()) + utf8Bytes(message.content()) + MESSAGE_ALLOWANCE;
                }
                yield bytes;
            }
        };
        return prompt + request.parameters().maxTokens();
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
        if (requests.isEmpty()) {
            return;
        }
        Limits limits = limitsOf(user);
        if (limits.unlimited()) {
            return;
        }
        long[] bounds = new long[requests.size()];
        long tokens = 0;
        for (int i = 0; i < bounds.length; i++) {
            bounds[i] = bound(requests.get(i));
            tokens = Math.addExact(tokens, bounds[i]);
        }
        while (true) {
            UserBudget budget = users.computeIfAbsent(user, UserBudget::new);
            budget.lock.lock();
            try {
                if (!budget.retired) {
                    admit(budget, limits, requests, bounds, tokens);
                    return;
                }
            } finally {
                budget.lock.unlock();
            }
        }
    }

    /** An admitted request that was not submitted after all: what it reserved is free again. */
    public void release(CompletionRequest request) {
        settled(request, null);
    }

    /** The scheduler's word on what a request costs: its reservation becomes that, the rest is free again. */
    @Override
    public void settled(CompletionRequest request, TokenUsage billed) {
        Reservation reservation = reservations.remove(request.requestId());
        if (reservation == null) {
            return; // an unlimited user's request, or one already settled
        }
        reservation.budget.lock.lock();
        try {
            for (Hold hold : reservation.holds) {
                long spent = billed == null ? 0 : hold.lease.account.window().countsRequests() ? 1 : billed.totalTokens();
                hold.lease.settle(hold.amount, spent);
            }
        } finally {
            reservation.budget.lock.unlock();
        }
    }

    private void admit(UserBudget budget, Limits limits, List<CompletionRequest> requests, long[] bounds, long tokens) {
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
                reserve(budget, needs, requests, bounds, now.toEpochMilli());
                return;
            }
            List<Need> hopeless = lacking.stream().filter(need -> need.amount > need.limit).toList();
            if (!hopeless.isEmpty()) {
                throw refusal(hopeless, now); // more than the whole limit: no lease can help
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
                reserve(budget, needs, requests, bounds, now.toEpochMilli());
                return;
            }
            throw refusal(lacking, now);
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

    private void reserve(UserBudget budget, List<Need> needs, List<CompletionRequest> requests, long[] bounds, long nowMillis) {
        for (Need need : needs) {
            need.lease.reserve(need.amount, nowMillis);
        }
        for (int i = 0; i < requests.size(); i++) {
            List<Hold> holds = new ArrayList<>(needs.size());
            for (Need need : needs) {
                holds.add(new Hold(need.lease, need.lease.account.window().countsRequests() ? 1 : bounds[i]));
            }
            reservations.put(requests.get(i).requestId(), new Reservation(budget, holds));
        }
    }

    /** Waits, with the user's lock released, until the lease in flight for this user is done. */
    private void awaitLease(UserBudget budget, long waitUntilNanos) {
        long left = waitUntilNanos - ticker.nanoTime();
        try {
            if (left <= 0 || !budget.leased.await(left, TimeUnit.NANOSECONDS)) {
                throw new BudgetUnavailableException("the budget store did not answer in time", STORE_RETRY_AFTER, null);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BudgetUnavailableException("interrupted while waiting for budget", STORE_RETRY_AFTER, e);
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
        long probeAt = nextProbeAt.get();
        if (storeAway && (nowMillis < probeAt || !nextProbeAt.compareAndSet(probeAt, nowMillis + PROBE_EVERY_MILLIS))) {
            // the store is away and another request tried it within the last second: no need to wait for it again
            throw new BudgetUnavailableException(
                    "the budget store is unavailable and this gateway holds no budget left for this request; try again later",
                    STORE_RETRY_AFTER, null);
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
        startLeaser();
        leaseQueue.add(pending);
        while (budget.leasing == pending) {
            awaitLease(budget, waitUntilNanos);
        }
        if (pending.failure != null) {
            throw new BudgetUnavailableException(
                    "the budget store is unavailable and this gateway holds no budget left for this request; try again later",
                    STORE_RETRY_AFTER, pending.failure);
        }
        return pending.enough;
    }

    private void startLeaser() {
        if (leaser == null) {
            synchronized (leaseQueue) {
                if (leaser == null) {
                    leaser = Thread.ofVirtual().name("budget-leaser").start(this::leaseInTurns);
                }
            }
        }
    }

    /** Sends the leases waiting, up to {@link #ASKS_PER_LEASE} windows, in one statement; then the next ones. */
    private void leaseInTurns() {
        while (true) {
            List<PendingLease> turn = new ArrayList<>();
            try {
                turn.add(leaseQueue.take());
            } catch (InterruptedException stop) {
                return;
            }
            int windows = turn.getFirst().asks.size();
            PendingLease next;
            while (windows < ASKS_PER_LEASE && (next = leaseQueue.poll()) != null) {
                turn.add(next);
                windows += next.asks.size();
            }
            List<BudgetStore.Ask> asks = new ArrayList<>(windows);
            turn.forEach(pending -> asks.addAll(pending.asks));
            try {
                lessee.send(asks.stream().map(BudgetStore.Ask::account).toList(), (operation, sentAt) -> {
                    Map<BudgetStore.Account, BudgetStore.Grant> byAccount = new HashMap<>();
                    store.lease(operation, asks).forEach(grant -> byAccount.put(grant.account(), grant));
                    applyAll(turn, byAccount, null, sentAt);
                    return null;
                }, new Lessee.Consequence() {
                    @Override
                    public void applied(List<BudgetStore.Resolution> resolutions, long sentAtNanos) {
                        // granted after the requests stopped waiting: kept, and given back when idle
                        resolutions.forEach(resolution -> grantedLate(resolution, sentAtNanos));
                    }

                    @Override
                    public void notApplied() {
                        // nothing was granted
                    }
                });
                storeIsBack();
            } catch (BudgetStoreUnavailableException away) {
                storeWentAway(away);
                applyAll(turn, Map.of(), away, 0);
            } catch (RuntimeException unexpected) {
                LOG.log(System.Logger.Level.WARNING, "leasing budget failed", unexpected);
                applyAll(turn, Map.of(), unexpected, 0);
            }
        }
    }

    private void applyAll(List<PendingLease> turn, Map<BudgetStore.Account, BudgetStore.Grant> grants, RuntimeException failure,
            long sentAt) {
        for (PendingLease pending : turn) {
            try {
                pending.apply(grants, failure, sentAt, lessee.backedUntil(sentAt));
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "applying a lease failed", e); // the leaser must go on
            }
        }
    }

    /** A lease found applied when its outcome was resolved: its grant joins this instance's slice. */
    private void grantedLate(BudgetStore.Resolution resolution, long sentAtNanos) {
        BudgetStore.Account account = resolution.account();
        while (true) {
            UserBudget budget = users.computeIfAbsent(account.user(), UserBudget::new);
            budget.lock.lock();
            try {
                if (budget.retired) {
                    continue;
                }
                Lease lease = budget.lease(account.window(), account.start());
                if (resolution.lost()) {
                    lease = budget.lose(account);
                }
                lease.free += resolution.granted();
                lease.renewed(lessee.backedUntil(sentAtNanos), sentAtNanos);
                if (resolution.granted() > 0) {
                    // kept for the requests that got 503 and try again, then given back when idle like any slice
                    lease.leasedAt = lease.lastReserved = clock.millis();
                }
                return;
            } finally {
                budget.lock.unlock();
            }
        }
    }

    private LimitExceededException refusal(List<Need> lacking, Instant now) {
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
                    lease.account.window(), need.limit, Math.min(free, need.amount - 1), need.amount, lease.end, retryAfter, soon);
            if (latest == null || refusal.retryAfter().compareTo(latest.retryAfter()) > 0) {
                latest = refusal;
            }
        }
        return latest;
    }

    // --- limits

    /** The limits that apply to a user: its own, else the defaults. */
    public Limits limitsOf(long user) {
        if (limitsReadAt == null) {
            refreshLimits();
        }
        return own.getOrDefault(user, defaults);
    }

    /** A user's limits as the store has them now, for the operator. */
    public UserLimits limits(long user) {
        try {
            return store.limitsOf(user).map(limits -> new UserLimits(user, limits, true))
                    .orElseGet(() -> new UserLimits(user, defaults, false));
        } catch (BudgetStoreUnavailableException away) {
            throw new BudgetUnavailableException("the budget store is unavailable; try again later", STORE_RETRY_AFTER, away);
        }
    }

    /** Sets a user's own limits: here at once, on every other instance within {@code limitsEvery} and a flush. */
    public UserLimits setLimits(long user, Limits limits) {
        try {
            store.putLimits(user, limits);
        } catch (BudgetStoreUnavailableException away) {
            throw new BudgetUnavailableException("the budget store is unavailable; try again later", STORE_RETRY_AFTER, away);
        }
        changed(user, limits);
        return new UserLimits(user, limits, true);
    }

    /** Puts a user back on the defaults: here at once, on every other instance within {@code limitsEvery} and a flush. */
    public UserLimits clearLimits(long user) {
        try {
            store.clearLimits(user);
        } catch (BudgetStoreUnavailableException away) {
            throw new BudgetUnavailableException("the budget store is unavailable; try again later", STORE_RETRY_AFTER, away);
        }
        changed(user, null);
        return new UserLimits(user, defaults, false);
    }

    /** Reads the limits changed since the last read; the last known ones stay while the store is away. */
    public void refreshLimits() {
        synchronized (limitsLock) {
            Instant since = limitsReadAt == null ? null : limitsReadAt.minus(LIMITS_OVERLAP);
            BudgetStore.LimitsChanges changes;
            try {
                changes = store.limitsChangedSince(since);
                storeIsBack();
            } catch (BudgetStoreUnavailableException away) {
                storeWentAway(away);
                if (limitsReadAt == null) {
                    throw new BudgetUnavailableException("the users' limits cannot be read: the budget store is unavailable",
                            STORE_RETRY_AFTER, away);
                }
                return;
            }
            changes.limits().forEach(this::changed);
            changes.cleared().forEach(user -> changed(user, null));
            limitsReadAt = changes.readAt();
        }
    }

    /** @param limits null: back on the defaults */
    private void changed(long user, Limits limits) {
        Limits before = limits == null ? own.remove(user) : own.put(user, limits);
        UserBudget budget = users.get(user);
        if (budget != null && (limits == null ? before != null : !limits.equals(before))) {
            budget.limitsChanged = true; // what it holds was leased under the old limits: given back at the next flush
        }
    }

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
            throw new BudgetUnavailableException("the budget store is unavailable; try again later", STORE_RETRY_AFTER, away);
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

    /** Gives back the slices that are due and reports billed amounts, in one round trip. */
    public void flush() {
        flush(false);
    }

    /** Gives back everything held and reports everything billed: at shutdown, once no request is in flight any more. */
    public void giveBackEverything() {
        flush(true);
    }

    private void flush(boolean everything) {
        synchronized (flushLock) {
            if (storeAway && limitsReadAt != null) {
                refreshLimits(); // a cheap read tells whether the store is back, so that slices due go back now
            }
            if (!storeAway && lessee.inDoubt()) {
                lessee.resolve(); // a lease that committed late is kept (and given back below when idle)
            }
            Instant now = clock.instant();
            long nowMillis = now.toEpochMilli();
            long nowNanos = ticker.nanoTime();
            // one give-back per window: a slice's, plus what the requests of a lost one were billed
            Map<BudgetStore.Account, List<Sending>> sending = new HashMap<>();
            for (UserBudget budget : users.values()) {
                budget.lock.lock();
                try {
                    boolean changed = budget.limitsChanged;
                    budget.limitsChanged = false;
                    for (Iterator<Lease> leases = budget.leases.values().iterator(); leases.hasNext(); ) {
                        Lease lease = leases.next();
                        boolean over = !now.isBefore(lease.end);
                        // while the store is away, a current window's slice stays: it is what this instance serves from
                        boolean due = over || everything || !storeAway && (changed
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
                        budget.retired = true;
                        users.remove(budget.user, budget);
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
                    store.giveBack(operation, giveBacks).forEach(hold -> gaveBack(sending.get(hold.account()), hold.lost(), sentAt));
                    return null;
                },
                        new Lessee.Consequence() {
                            @Override
                            public void applied(List<BudgetStore.Resolution> resolutions, long sentAtNanos) {
                                resolutions.forEach(resolution ->
                                        gaveBack(sending.get(resolution.account()), resolution.lost(), sentAtNanos));
                            }

                            @Override
                            public void notApplied() {
                                // still this instance's: kept, for serving while the store is away, and sent again later
                                sending.values().forEach(sent -> sent.forEach(Budgets::takeBack));
                            }
                        });
                storeIsBack();
            } catch (BudgetStoreUnavailableException away) {
                storeWentAway(away);
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
        sent.budget.lock.lock();
        try {
            sent.lease.takeBack(sent);
        } finally {
            sent.budget.lock.unlock();
        }
    }

    /** A give-back applied: the window's hold is renewed, or was found expired (its slice is lost). */
    private void gaveBack(List<Sending> sent, boolean lost, long sentAtNanos) {
        if (sent == null || sent.isEmpty()) {
            return;
        }
        UserBudget budget = sent.getFirst().budget;
        BudgetStore.Account account = sent.getFirst().lease.account;
        budget.lock.lock();
        try {
            if (lost) {
                budget.lose(account);
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

    private void storeWentAway(BudgetStoreUnavailableException away) {
        if (!storeAway) {
            storeAway = true;
            LOG.log(System.Logger.Level.WARNING, "the budget store is unavailable: limited users are served from the budget "
                    + "this instance holds, and get 503 beyond it (" + away.getMessage() + ")");
        }
    }

    private void storeIsBack() {
        if (storeAway) {
            storeAway = false;
            LOG.log(System.Logger.Level.INFO, "the budget store is back");
        }
    }

    /** Deletes the store's windows that are long over: minutes after an hour, days after a week, months after a year. */
    public void forgetOldWindows() {
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
                if (storeAway) {
                    refreshLimits(); // one cheap read tells whether the store is back
                    if (storeAway) {
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
                    refreshLimits();
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

    /** Stops the upkeep and gives back everything held. */
    @Override
    public void close() throws InterruptedException {
        if (keeper != null) {
            keeper.interrupt();
            keeper.join(Duration.ofSeconds(10));
        }
        if (leaser != null) {
            leaser.interrupt();
        }
        try {
            giveBackEverything();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "giving back budget at shutdown failed", e);
        }
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

    private static long utf8Bytes(String text) {
        long bytes = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < 0x80) {
                bytes += 1;
            } else if (c < 0x800) {
                bytes += 2;
            } else if (Character.isHighSurrogate(c)) {
                bytes += 4; // with its low surrogate, which adds nothing
            } else if (!Character.isLowSurrogate(c)) {
                bytes += 3;
            }
        }
        return bytes;
    }

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

    /** One user's slices on this instance, one per window; everything in it guarded by its lock. */
    private static final class UserBudget {
        final long user;
        final ReentrantLock lock = new ReentrantLock();
        final Condition leased = lock.newCondition();
        final Map<BudgetStore.Account, Lease> leases = new HashMap<>();
        /** The latest window of each kind, to find it without a lookup by key. */
        final Map<Window, Lease> current = new EnumMap<>(Window.class);
        boolean retired;
        /** Slices whose holds the store let expire, with requests in flight or billed amounts still to report. */
        final List<Lease> lost = new ArrayList<>();
        /** The lease in flight for this user, if any: one at a time. */
        PendingLease leasing;
        volatile boolean limitsChanged;

        UserBudget(long user) {
            this.user = user;
        }

        /** This user's lease on the window that starts at {@code start}: the current one without allocating. */
        Lease lease(Window window, Instant start) {
            Lease lease = current.get(window);
            if (lease == null || !lease.account.start().equals(start)) {
                lease = leases.computeIfAbsent(new BudgetStore.Account(user, window, start),
                        account -> new Lease(account, window.end(account.start())));
                current.put(window, lease);
            }
            return lease;
        }

        /**
         * The store let this window's hold expire: its slice is replaced by an empty one; the old one only reports
         * what its requests in flight are billed.
         */
        Lease lose(BudgetStore.Account account) {
            Lease old = leases.get(account);
            if (old == null) {
                return lease(account.window(), account.start());
            }
            old.lost = true;
            old.free = 0;
            old.unused = 0;
            old.overdraft = 0;
            LOG.log(System.Logger.Level.WARNING, "the budget store let this instance's hold of user " + user + "'s "
                    + old.account.window().limitName() + " window expire (cut off from it for too long?): what it held "
                    + "there is free for every instance again");
            lost.add(old);
            var fresh = new Lease(old.account, old.end);
            leases.put(old.account, fresh);
            current.put(old.account.window(), fresh);
            return fresh;
        }
    }

    /**
     * This instance's part of one window's budget. Of what the store granted it and it has not given back, {@code
     * free} is ready for reservations, {@code reserved} held by requests in flight, {@code unused} due to go back,
     * and what requests spent is billed; {@code consumed} is the part of it not yet reported.
     */
    private static final class Lease {
        final BudgetStore.Account account;
        final Instant end;
        long free;
        long reserved;
        long unused;
        long overdraft;
        long consumed;
        long leasedAt;
        long lastReserved;
        long demandSinceLease;
        long demandBefore;
        long billedAtStore;
        long grantedAtStore;
        boolean tight;
        long reportedAt;
        /** Whether the store ever renewed this slice's hold, and until when (ticker) it may be reserved from. */
        boolean backed;
        long backedUntil;
        /** When (ticker) the operation that last renewed the hold was sent. */
        long renewedAt;
        /**
         * The store let the hold expire (others may have leased it): nothing here is free any more; requests in flight
         * settle into what is billed, reported without lowering the hold.
         */
        boolean lost;

        Lease(BudgetStore.Account account, Instant end) {
            this.account = account;
            this.end = end;
        }

        void reserve(long amount, long nowMillis) {
            free -= amount;
            reserved += amount;
            demandSinceLease += amount;
            lastReserved = nowMillis;
        }

        void settle(long amount, long spent) {
            reserved -= amount;
            consumed += spent;
            if (lost) {
                return; // nothing here is held any more: what was not spent is nobody's to free
            }
            if (spent <= amount) {
                free += amount - spent;
                return;
            }
            long beyond = spent - amount;
            long covered = Math.min(beyond, free);
            free -= covered;
            overdraft += beyond - covered;
            LOG.log(System.Logger.Level.WARNING, "the worker counted " + spent + " " + (account.window().countsRequests()
                    ? "requests" : "tokens") + " for a request of user " + account.user() + " that reserved " + amount
                    + " in its " + account.window().limitName() + " window: the excess is charged to the budget all the same");
        }

        boolean backedAt(long nowNanos) {
            return backed && nowNanos - backedUntil < 0;
        }

        void renewed(long backedUntil, long sentAtNanos) {
            if (!backed || backedUntil - this.backedUntil > 0) {
                this.backedUntil = backedUntil;
                this.renewedAt = sentAtNanos;
            }
            backed = true;
        }

        /** What a give-back that never applied took from this slice is its own again (billed amounts only, once lost). */
        void takeBack(Sending sent) {
            consumed += sent.consumed();
            if (!lost) {
                unused += sent.unused();
                overdraft += sent.overdraft();
            }
            reportedAt = 0; // reported at the next flush that reaches the store
        }

        /** What went to be given back but has not left yet is still this instance's: taken back when needed. */
        void reclaimUnused(long needed) {
            if (free < needed && unused > 0) {
                free += unused;
                unused = 0;
            }
        }

        void giveUpFree() {
            unused += free;
            free = 0;
        }

        /** @param tight whether the store gave less than asked: its budget is nearly spent, slices go back sooner */
        void granted(BudgetStore.Grant grant, boolean tight, long nowMillis) {
            this.tight = tight;
            free += grant.granted();
            billedAtStore = grant.consumed();
            grantedAtStore = grant.totalGranted();
            if (grant.granted() > 0) {
                leasedAt = nowMillis;
                demandBefore = demandSinceLease;
                demandSinceLease = 0;
            }
        }

        long recentDemand() {
            return Math.max(demandBefore, demandSinceLease);
        }

        /** What the user was billed in this window as far as this instance knows: reported by all, and its own since. */
        long billedAsKnown() {
            return billedAtStore + consumed;
        }
    }

    /** One user's lease, waiting for its turn with the store; its outcome is written under the user's lock. */
    private static final class PendingLease {
        final UserBudget budget;
        final List<BudgetStore.Ask> asks;
        final long askedAtMillis;
        boolean enough; // guarded by budget.lock
        RuntimeException failure; // guarded by budget.lock

        PendingLease(UserBudget budget, List<BudgetStore.Ask> asks, long askedAtMillis) {
            this.budget = budget;
            this.asks = asks;
            this.askedAtMillis = askedAtMillis;
        }

        /**
         * Adds what was granted to the user's slices, and wakes the requests waiting for it.
         *
         * @param backedUntil until when (ticker) the holds this lease renewed may be reserved from
         */
        void apply(Map<BudgetStore.Account, BudgetStore.Grant> grants, RuntimeException failure, long sentAt, long backedUntil) {
            budget.lock.lock();
            try {
                this.failure = failure;
                boolean all = failure == null;
                for (BudgetStore.Ask ask : asks) {
                    BudgetStore.Grant grant = grants.get(ask.account());
                    if (grant != null) {
                        Lease lease = budget.lease(ask.account().window(), ask.account().start());
                        if (grant.lost()) {
                            lease = budget.lose(ask.account()); // the store let the hold expire: what was held here is gone
                        }
                        lease.granted(grant, grant.granted() < ask.want(), askedAtMillis);
                        lease.renewed(backedUntil, sentAt);
                    }
                    all &= grant != null && grant.granted() >= ask.need();
                }
                enough = all;
                budget.leasing = null;
                budget.leased.signalAll();
            } finally {
                budget.lock.unlock();
            }
        }
    }

    private record Need(Lease lease, long limit, long amount) {}

    private record Hold(Lease lease, long amount) {}

    private record Reservation(UserBudget budget, List<Hold> holds) {}

    private record Sending(UserBudget budget, Lease lease, long unused, long overdraft, long consumed) {
        /** What leaves the hold: unused and billed amounts, less what was spent beyond it; nothing from a lost slice. */
        long released() {
            return lease.lost ? 0 : unused - overdraft + consumed;
        }
    }
}
