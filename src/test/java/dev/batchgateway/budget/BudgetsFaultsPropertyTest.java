package dev.batchgateway.budget;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.BudgetCharge;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.TokenBound;
import dev.batchgateway.completion.TokenUsage;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import net.jqwik.api.AfterFailureMode;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.ShrinkingMode;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.LongRange;

/**
 * Random interleavings of admissions, settlements, leases and give-backs (the upkeep of each instance as time passes),
 * statements that time out on the gateway's side having committed, not committed or still waiting for a lock (and
 * committing later), usage writes that time out so too, instances killed and replaced, instances cut off from the
 * store and store outages, short ones and ones far longer than the expiry, across TWO instances sharing one store.
 * A limited user's usage row is written only to the store, only against live holds ({@code usage_record_on_live_holds},
 * V20), and only while its instance's own fence lets it charge them ({@link Budgets#charges}); else it is not written,
 * the answer does not leave and nothing is billed. After every step, per window:
 * <ul>
 *   <li>billed + reserved ≤ limit, with no allowance: reserved counts every request in flight that can still be
 *       billed, that is every one whose holds the store has not let expire under it;
 *   <li>what the store counts taken (billed and unexpired holds) ≤ limit;
 *   <li>nothing stranded: a live instance that knows the outcome of all its operations holds exactly what the store
 *       counts as its hold, less what usage writes in doubt charged there that never committed; and a killed one's
 *       hold counts for nothing one expiry after it last changed.
 * </ul>
 */
class BudgetsFaultsPropertyTest {

    private static final long USER = 42;
    private static final Instant START = Instant.parse("2026-11-24T10:00:00Z");
    private static final Duration EXPIRY = Duration.ofSeconds(30);
    /** Outages and cut-offs end by then: below the expiry less its margin and a renewal's period. */
    private static final Duration SHORT_OUTAGES = Duration.ofSeconds(10);
    /** Outages and cut-offs that outlast the expiry more than twice. */
    private static final Duration LONG_OUTAGES = Duration.ofSeconds(70);
    private static final int INSTANCES = 2;

    sealed interface Step {}

    record Admit(int instance, int prompts, int promptBytes, int maxTokens) implements Step {}

    /** The scheduler settles an outstanding request: billed a share of its bound in percent, or unbilled (negative). */
    record Settle(int pick, int percentBilled) implements Step {}

    record Release(int pick) implements Step {}

    /** Time passes; every live instance's upkeep runs (renewals, give-backs, reports, resolutions), as its keeper would. */
    record Tick(int millis) implements Step {}

    /** The next statement to the store (lease, give-back or read-back) times out on the gateway's side. */
    record Timeout(MemoryBudgetStore.Fault fault) implements Step {}

    /** The next usage write times out on the gateway's side: its rows are in doubt (answers withheld, counted billed). */
    record UsageTimeout(MemoryBudgetStore.Fault fault) implements Step {}

    /** Statements that waited for a lock get it, and commit unless fenced. */
    record CommitQueued() implements Step {}

    /** kill -9: the instance is gone with its requests in flight and whatever it had not reported; a new one starts. */
    record Kill(int instance) implements Step {}

    record StoreAway() implements Step {}

    record StoreBack() implements Step {}

    record CutOff(int instance) implements Step {}

    record Reconnect(int instance) implements Step {}

    private record Key(Window window, Instant start) {}

    /** A request in flight; {@code uncovered}: the windows where its instance's hold expired while it was in flight. */
    private record Outstanding(CompletionRequest request, Budgets instance, Instant minute, Instant day, Instant month, long bound,
            Set<Window> uncovered) {
        Instant start(Window window) {
            return switch (window) {
                case MINUTE -> minute;
                case DAY -> day;
                case MONTH -> month;
            };
        }

        long amount(Window window) {
            return window.countsRequests() ? 1 : bound;
        }
    }

    /** One instance's place: the instance now in it, and since when it is cut off from the store (null: it is not). */
    private static final class Slot {
        Budgets budgets;
        Instant cutSince;
    }

    private record Dead(UUID id, Instant killedAt) {}

    /** One instance's hold of a window, since the operation that started it. */
    private record HoldKey(UUID instance, Window window, Instant start, long since) {}

    /** The harness: its state between steps. */
    private static final class World {
        final ManualClock clock = new ManualClock(START);
        final MemoryBudgetStore store = new MemoryBudgetStore(clock);
        final Limits limits;
        final Duration maxOutage;
        final Slot[] slots = new Slot[INSTANCES];
        final List<Outstanding> outstanding = new ArrayList<>();
        /** What usage rows the store took billed, by the instance that wrote them. */
        final Map<UUID, Map<Key, Long>> billedBy = new HashMap<>();
        final List<Dead> dead = new ArrayList<>();
        /** What usage writes in doubt (never committed, or not yet) charged to holds: their instances count it billed. */
        final Map<HoldKey, Long> inDoubt = new HashMap<>();
        /** The fault of the next usage write, if any. */
        MemoryBudgetStore.Fault nextUsageFault;
        Instant awaySince;
        Instant lastQueuedCommit = START;

        World(Limits limits, Duration maxOutage) {
            this.limits = limits;
            this.maxOutage = maxOutage;
            for (int i = 0; i < INSTANCES; i++) {
                slots[i] = new Slot();
                slots[i].budgets = start();
            }
        }

        Budgets start() {
            return new Budgets(store, limits, clock, clock.ticker(), Budgets.Timing.DEFAULT, EXPIRY);
        }

        /** Moves time on, ending outages and cut-offs when they reach their longest, and runs every upkeep. */
        void pass(Duration time) {
            Duration left = time;
            do {
                Duration step = left;
                if (store.away) {
                    step = min(step, maxOutage.minus(Duration.between(awaySince, clock.instant())));
                }
                for (Slot slot : slots) {
                    if (slot.cutSince != null) {
                        step = min(step, maxOutage.minus(Duration.between(slot.cutSince, clock.instant())));
                    }
                }
                clock.advance(step);
                left = left.minus(step);
                if (store.away && !Duration.between(awaySince, clock.instant()).minus(maxOutage).isNegative()) {
                    store.away = false;
                }
                for (Slot slot : slots) {
                    if (slot.cutSince != null && !Duration.between(slot.cutSince, clock.instant()).minus(maxOutage).isNegative()) {
                        reconnect(slot);
                    }
                }
                noteUncovered();
                for (int i = 0; i < INSTANCES; i++) {
                    upkeep(slots[i].budgets);
                }
                noteUncovered();
            } while (left.isPositive());
        }

        /** Marks the windows where a request's instance no longer has its hold (expired in the store, or known lost). */
        void noteUncovered() {
            for (Outstanding request : outstanding) {
                for (Window window : Window.values()) {
                    if (store.expired(request.instance().instanceId(), USER, window, request.start(window))
                            || request.instance().reservedOnLostSlice(request.request(), window)) {
                        request.uncovered().add(window);
                    }
                }
            }
        }

        /**
         * The worker answered a request: its usage row is written with its charges if its instance's fence lets it
         * charge them and the store takes it against live holds; else nothing is written (no journal for a limited
         * user's row) and the request is billed nothing. A write that times out leaves it in doubt: counted billed by
         * its instance, billed in the store only if it committed.
         *
         * @return what the request is settled with: its usage, or null when nothing is billed
         */
        TokenUsage answered(Outstanding done, TokenUsage usage) {
            List<BudgetCharge> charges;
            try {
                charges = done.instance().charges(done.request(), usage);
            } catch (CompletionRejectedException fenced) {
                return null; // its instance can no longer count on a hold it reserved from: 503, unbilled
            }
            if (!reachable(slotOf(done.instance()))) {
                return null; // the store is out of reach: 503, unbilled
            }
            Runnable billed = () -> {
                // what lets a request whose hold expired count as reserving nothing: it is never billed
                assertThat(done.uncovered()).as("windows where a billed request's hold had expired under it").isEmpty();
                for (BudgetCharge charge : charges) {
                    assertThat(store.live(charge.holder(), USER, window(charge), charge.windowStart(), charge.holdSince()))
                            .as("a usage row charged to a hold that is no longer live, in %s", charge.window()).isTrue();
                }
                bill(done, usage.totalTokens());
            };
            if (nextUsageFault != null) {
                MemoryBudgetStore.Fault fault = nextUsageFault;
                nextUsageFault = null;
                List<HoldKey> holds = charges.stream().map(charge -> new HoldKey(charge.holder(), window(charge),
                        charge.windowStart(), charge.holdSince())).toList();
                for (int i = 0; i < charges.size(); i++) {
                    inDoubt.merge(holds.get(i), charges.get(i).amount(), Long::sum);
                }
                store.chargeTimedOut(charges, fault, () -> {
                    billed.run();
                    for (int i = 0; i < charges.size(); i++) {
                        inDoubt.merge(holds.get(i), -charges.get(i).amount(), Long::sum);
                    }
                });
                return usage; // in doubt: billed as far as its instance knows
            }
            if (store.chargeOnLiveHolds(charges)) {
                billed.run();
                return usage;
            }
            return null; // a hold it charges expired in the store meanwhile: refused, unbilled
        }

        void bill(Outstanding done, long tokens) {
            var billed = billedBy.computeIfAbsent(done.instance().instanceId(), id -> new HashMap<>());
            billed.merge(new Key(Window.MINUTE, done.minute()), 1L, Long::sum);
            billed.merge(new Key(Window.DAY, done.day()), tokens, Long::sum);
            billed.merge(new Key(Window.MONTH, done.month()), tokens, Long::sum);
        }

        boolean reachable(int slot) {
            return !store.away && slots[slot].cutSince == null;
        }

        static Window window(BudgetCharge charge) {
            return Window.valueOf(charge.window().toUpperCase(java.util.Locale.ROOT));
        }

        int slotOf(Budgets instance) {
            for (int i = 0; i < INSTANCES; i++) {
                if (slots[i].budgets == instance) {
                    return i;
                }
            }
            throw new IllegalStateException("a request of an instance that is gone");
        }

        void reconnect(Slot slot) {
            store.cutOff.remove(slot.budgets.instanceId());
            slot.cutSince = null;
        }

        static void upkeep(Budgets budgets) {
            try {
                budgets.flush();
            } catch (BudgetUnavailableException notYet) {
                // the limits could not be read yet: tried again at the next upkeep
            }
        }

        Map<Key, Long> billedByAll() {
            Map<Key, Long> all = new LinkedHashMap<>();
            billedBy.values().forEach(billed -> billed.forEach((key, amount) -> all.merge(key, amount, Long::sum)));
            return all;
        }

        private static Duration min(Duration a, Duration b) {
            Duration least = a.compareTo(b) <= 0 ? a : b;
            return least.isNegative() ? Duration.ZERO : least;
        }
    }

    @Property(tries = 300, shrinking = ShrinkingMode.BOUNDED, seed = "20261205", afterFailure = AfterFailureMode.PREVIOUS_SEED)
    void billedPlusReservedStaysWithinALimitAndNothingIsStrandedUnderFaults(
            @ForAll @LongRange(min = 0, max = 3000) long tokensPerDay,
            @ForAll @LongRange(min = 0, max = 6000) long tokensPerMonth,
            @ForAll @LongRange(min = 0, max = 30) long requestsPerMinute,
            @ForAll("steps") List<Step> steps) {
        check(new World(new Limits(tokensPerDay, tokensPerMonth, requestsPerMinute), SHORT_OUTAGES), steps);
    }

    /**
     * The same with outages and cut-offs of up to 70 s, more than twice the expiry: requests in flight on an instance
     * cut off past its hold's expiry can no longer be billed, so the invariant holds with no allowance all the same.
     */
    @Property(tries = 200, shrinking = ShrinkingMode.BOUNDED, seed = "20261205", afterFailure = AfterFailureMode.PREVIOUS_SEED)
    void cutOffsAndOutagesLongerThanTheExpiryNeverGoBeyondALimit(
            @ForAll @LongRange(min = 200, max = 800) long tokensPerDay,
            @ForAll @LongRange(min = 200, max = 1600) long tokensPerMonth,
            @ForAll @LongRange(min = 10, max = 30) long requestsPerMinute,
            @ForAll("longSteps") List<Step> steps) {
        check(new World(new Limits(tokensPerDay, tokensPerMonth, requestsPerMinute), LONG_OUTAGES), steps);
    }

    private static void check(World world, List<Step> steps) {
        // Given two instances sharing one store, and the user's limits

        // When the steps happen, in order
        for (Step step : steps) {
            apply(world, step);
            world.noteUncovered();

            // Then, after every step, billed + reserved fits in every limit, with no allowance: a request whose hold
            // expired under it in some window can never be billed any more (its row would be refused), so it reserves
            // nothing
            Map<Key, Long> used = new LinkedHashMap<>(world.billedByAll());
            for (Outstanding request : world.outstanding) {
                if (!request.uncovered().isEmpty()) {
                    continue;
                }
                used.merge(new Key(Window.MINUTE, request.minute()), 1L, Long::sum);
                used.merge(new Key(Window.DAY, request.day()), request.bound(), Long::sum);
                used.merge(new Key(Window.MONTH, request.month()), request.bound(), Long::sum);
            }
            used.forEach((key, amount) -> assertThat(amount)
                    .as("billed + reserved in %s %s after %s", key.window(), key.start(), step)
                    .isLessThanOrEqualTo(world.limits.of(key.window())));
            used.keySet().forEach(key -> assertThat(world.store.row(USER, key.window(), key.start()).granted)
                    .as("taken in the store in %s %s after %s", key.window(), key.start(), step)
                    .isLessThanOrEqualTo(world.limits.of(key.window())));
            // and nothing is stranded: live instances that know their operations' fate hold what the store counts
            Instant now = world.clock.instant();
            for (int i = 0; i < INSTANCES; i++) {
                Slot slot = world.slots[i];
                if (slot.budgets.inDoubt()) {
                    continue;
                }
                for (Window window : Window.values()) {
                    Instant start = window.start(now);
                    UUID id = slot.budgets.instanceId();
                    long stored = world.store.heldUnexpired(id, USER, window, start);
                    boolean expired = world.store.expired(id, USER, window, start);
                    long doubted = world.inDoubt.getOrDefault(
                            new HoldKey(id, window, start, world.store.sinceOp(id, USER, window, start)), 0L);
                    if (stored > 0 || !world.store.away && slot.cutSince == null && !expired) {
                        assertThat(stored).as("the store counts for an instance in %s after %s", window, step)
                                .isEqualTo(slot.budgets.holding(USER, window, start) + doubted);
                    }
                }
            }
            // and the dead hold nothing one expiry after their hold last changed
            for (Dead gone : world.dead) {
                Instant lastChange = gone.killedAt().isAfter(world.lastQueuedCommit) ? gone.killedAt() : world.lastQueuedCommit;
                if (!now.isBefore(lastChange.plus(EXPIRY))) {
                    for (Window window : Window.values()) {
                        assertThat(world.store.heldUnexpired(gone.id(), USER, window, window.start(now)))
                                .as("held by an instance killed at %s, in %s, after %s", gone.killedAt(), window, step).isZero();
                    }
                }
            }
        }

        // When the faults end, everything is settled unbilled, and the live instances give back what they hold
        world.store.away = false;
        for (Slot slot : world.slots) {
            world.reconnect(slot);
        }
        world.store.faults.clear();
        world.store.commitQueued();
        for (Outstanding request : world.outstanding) {
            request.instance().settled(request.request(), null);
        }
        world.pass(EXPIRY.plusSeconds(1));
        world.pass(Duration.ofSeconds(1));

        // Then the store holds exactly what was billed, the dead's billing included: nothing given back twice,
        // nothing stranded, nothing lost
        world.billedByAll().forEach((key, amount) -> {
            var row = world.store.row(USER, key.window(), key.start());
            assertThat(row.granted).as("taken in %s %s", key.window(), key.start()).isEqualTo(row.consumed);
            assertThat(row.consumed).as("billed in %s %s", key.window(), key.start())
                    .isEqualTo(amount);
        });
    }

    private static void apply(World world, Step step) {
        switch (step) {
            case Admit admit -> {
                Budgets instance = world.slots[admit.instance() % INSTANCES].budgets;
                List<CompletionRequest> requests = new ArrayList<>();
                for (int i = 0; i < admit.prompts(); i++) {
                    requests.add(new CompletionRequest(UUID.randomUUID(), USER, "x".repeat(admit.promptBytes()),
                            new GenerationParameters(admit.maxTokens())));
                }
                Instant now = world.clock.instant();
                try {
                    instance.admit(USER, requests);
                    for (CompletionRequest request : requests) {
                        world.outstanding.add(new Outstanding(request, instance, Window.MINUTE.start(now), Window.DAY.start(now),
                                Window.MONTH.start(now), TokenBound.of(request), EnumSet.noneOf(Window.class)));
                    }
                } catch (LimitExceededException | BudgetUnavailableException refused) {
                    // refused whole: nothing of it is reserved
                }
            }
            case Settle settle -> {
                if (!world.outstanding.isEmpty()) {
                    Outstanding done = world.outstanding.remove(settle.pick() % world.outstanding.size());
                    TokenUsage usage = null;
                    if (settle.percentBilled() >= 0) {
                        long tokens = done.bound() * settle.percentBilled() / 100;
                        // the answer leaves only if its row was written against live holds; else nothing is billed
                        usage = world.answered(done, new TokenUsage((int) (tokens / 2), (int) (tokens - tokens / 2)));
                    }
                    done.instance().settled(done.request(), usage);
                }
            }
            case Release release -> {
                if (!world.outstanding.isEmpty()) {
                    Outstanding done = world.outstanding.remove(release.pick() % world.outstanding.size());
                    done.instance().release(done.request());
                }
            }
            case Tick tick -> world.pass(Duration.ofMillis(tick.millis()));
            case Timeout timeout -> {
                // one fault at a time, and none while an instance is in doubt: a longer run of failures is a cut-off
                boolean calm = !world.store.faultsPending();
                for (Slot slot : world.slots) {
                    calm &= !slot.budgets.inDoubt();
                }
                if (calm) {
                    world.store.fault(timeout.fault());
                }
            }
            case UsageTimeout timeout -> {
                if (world.nextUsageFault == null) {
                    world.nextUsageFault = timeout.fault();
                }
            }
            case CommitQueued commit -> {
                world.store.commitQueued();
                world.lastQueuedCommit = world.clock.instant();
            }
            case Kill kill -> {
                Slot slot = world.slots[kill.instance() % INSTANCES];
                Budgets gone = slot.budgets;
                world.outstanding.removeIf(request -> request.instance() == gone); // never answered, never billed
                world.dead.add(new Dead(gone.instanceId(), world.clock.instant()));
                if (slot.cutSince != null) {
                    world.reconnect(slot);
                }
                slot.budgets = world.start();
            }
            case StoreAway away -> {
                if (!world.store.away) {
                    world.store.away = true;
                    world.awaySince = world.clock.instant();
                }
            }
            case StoreBack back -> world.store.away = false;
            case CutOff cut -> {
                Slot slot = world.slots[cut.instance() % INSTANCES];
                if (slot.cutSince == null) {
                    slot.cutSince = world.clock.instant();
                    world.store.cutOff.add(slot.budgets.instanceId());
                }
            }
            case Reconnect reconnect -> {
                Slot slot = world.slots[reconnect.instance() % INSTANCES];
                if (slot.cutSince != null) {
                    world.reconnect(slot);
                }
            }
        }
    }

    @Provide
    Arbitrary<List<Step>> steps() {
        return steps(2000, 20, 2, 2, 120);
    }

    /**
     * Longer ticks and more cut-offs, so that cut-offs outlast the expiry, fewer settlements, so that requests are still
     * in flight then, and smaller requests, so that many fit in a limit and are answered after their hold expired.
     */
    @Provide
    Arbitrary<List<Step>> longSteps() {
        return steps(8000, 12, 6, 4, 40).filter(steps -> steps.size() >= 60);
    }

    private static Arbitrary<List<Step>> steps(int maxTickMillis, int settles, int cutOffs, int reconnects, int maxBytes) {
        Arbitrary<Integer> instance = Arbitraries.integers().between(0, INSTANCES - 1);
        Arbitrary<Step> admit = Combinators.combine(instance, Arbitraries.integers().between(1, 3),
                Arbitraries.integers().between(1, maxBytes), Arbitraries.integers().between(1, maxBytes)).as(Admit::new);
        Arbitrary<Step> settle = Combinators.combine(Arbitraries.integers().between(0, 1000),
                Arbitraries.integers().between(-30, 100)).as(Settle::new);
        Arbitrary<Step> release = Arbitraries.integers().between(0, 1000).map(Release::new);
        Arbitrary<Step> tick = Arbitraries.integers().between(0, maxTickMillis).map(Tick::new);
        Arbitrary<Step> timeout = Arbitraries.of(MemoryBudgetStore.Fault.class).map(Timeout::new);
        Arbitrary<Step> usageTimeout = Arbitraries.of(MemoryBudgetStore.Fault.class).map(UsageTimeout::new);
        Arbitrary<Step> step = Arbitraries.frequencyOf(
                Tuple.of(30, admit), Tuple.of(settles, settle), Tuple.of(4, release), Tuple.of(22, tick), Tuple.of(8, timeout),
                Tuple.of(3, usageTimeout), Tuple.of(3, Arbitraries.just(new CommitQueued())), Tuple.of(2, instance.map(Kill::new)),
                Tuple.of(2, Arbitraries.just(new StoreAway())), Tuple.of(2, Arbitraries.just(new StoreBack())),
                Tuple.of(cutOffs, instance.map(CutOff::new)), Tuple.of(reconnects, instance.map(Reconnect::new)));
        return step.list().ofMaxSize(150);
    }
}
