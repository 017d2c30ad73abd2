package dev.batchgateway.completion;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.function.ToIntFunction;

/**
 * Forms each lane's batches and sends them, one loop for every lane, that never waits for a worker: a batch that is
 * ready takes a slot of its model's {@link Capacity} or stays in its lane, and the loop goes on with the other lanes. A
 * slot given back wakes the loop.
 *
 * <p>A batch holds up to {@code batchSize} requests of its batch key; a batch of inputs to embed, up to {@code
 * embeddingsBatchSize}.
 *
 * <p>Each model has two lanes, its default tier and its flex tier. No flex request leaves while a default request of its
 * model waits, except in the empty seats of a default batch that leaves: those take flex requests of the same batch key,
 * and a default batch that flex requests can fill is full and leaves at once.
 */
final class Dispatcher {

    /** How often a model whose slots are all taken looks again without being woken (a worker back in rotation). */
    private static final long CAPACITY_RECHECK_NANOS = Duration.ofMillis(100).toNanos();
    private static final Object STOP = new Object();
    private static final Object WAKE = new Object();

    /** Where a formed batch goes: the scheduler builds it and runs its call on the slot. */
    interface Departures {
        void leave(Capacity.Slot slot, LaneId lane, List<Queued> members, int flexSeats, BatchTrigger trigger);
    }

    private final SchedulerPolicy policy;
    private final Ticker ticker;
    private final SchedulerEvents events;
    private final Function<String, Capacity> capacities;
    private final Supplier<LanePolicy> lanePolicy;
    private final Departures departures;
    private final BlockingQueue<Object> intake = new LinkedBlockingQueue<>();
    /** Created by the loop; read by any thread for slots in use and for requests that ended. */
    private final Map<String, ModelLanes> models = new ConcurrentHashMap<>();
    /** A batch formed and not yet handed on, with its slot: answered with the rest if the loop breaks meanwhile. */
    private List<Queued> inHand = List.of();
    private Capacity.Slot slotInHand;

    Dispatcher(
            SchedulerPolicy policy,
            Ticker ticker,
            SchedulerEvents events,
            Function<String, Capacity> capacities,
            Supplier<LanePolicy> lanePolicy,
            Departures departures) {
        this.policy = policy;
        this.ticker = ticker;
        this.events = events;
        this.capacities = capacities;
        this.lanePolicy = lanePolicy;
        this.departures = departures;
    }

    /** A request joins its lane. Any thread. */
    void arrive(Queued request) {
        intake.add(request);
    }

    /** Takes back a request the loop has not seen yet; false when it had. Any thread. */
    boolean withdraw(Queued request) {
        return intake.remove(request);
    }

    /** A request ended while it waited. Any thread. */
    void ended(Queued request) {
        ModelLanes lanes = models.get(request.lane.model());
        if (lanes != null) {
            lanes.lane(request.lane.tier()).ended(request);
        }
    }

    /** A slot was given back: the loop looks again. Any thread. */
    void wake() {
        intake.add(WAKE);
    }

    /** The loop sends what waits and ends once every lane is empty. Any thread. */
    void stop() {
        intake.add(STOP);
    }

    /** Batches in flight, every model's. Any thread. */
    int batchesInFlight() {
        return models.values().stream().mapToInt(lanes -> lanes.capacity.inUse()).sum();
    }

    /** Runs the loop until {@link #stop()} and every lane has left; interrupted, it leaves what waits to the caller. */
    void run() throws InterruptedException {
        boolean stopping = false;
        while (!(stopping && allEmpty())) {
            long wait = nanosUntilNextMove(stopping);
            Object next = wait == Long.MAX_VALUE ? intake.take() : intake.poll(wait, TimeUnit.NANOSECONDS);
            while (next != null) {
                if (next == STOP) {
                    stopping = true;
                } else if (next instanceof Queued request && !request.isDone()) {
                    lanes(request.lane.model()).lane(request.lane.tier()).add(request);
                }
                next = intake.poll();
            }
            for (ModelLanes lanes : models.values()) {
                lanes.dispatch(ticker.nanoTime(), stopping);
            }
        }
    }

    /** Every request still waiting, in a lane or not yet in one, taken out: after the loop has ended. */
    List<Queued> drain() {
        List<Queued> left = new ArrayList<>(inHand);
        inHand = List.of();
        if (slotInHand != null) {
            slotInHand.close();
            slotInHand = null;
        }
        models.values().forEach(lanes -> {
            left.addAll(lanes.standard.drain());
            left.addAll(lanes.flex.drain());
        });
        Object next;
        while ((next = intake.poll()) != null) {
            if (next instanceof Queued request) {
                left.add(request);
            }
        }
        return left;
    }

    private ModelLanes lanes(String model) {
        return models.computeIfAbsent(model, name -> new ModelLanes(name, capacities.apply(name)));
    }

    private boolean allEmpty() {
        return models.values().stream().allMatch(lanes -> lanes.standard.isEmpty() && lanes.flex.isEmpty());
    }

    private long nanosUntilNextMove(boolean stopping) {
        long now = ticker.nanoTime();
        long wait = Long.MAX_VALUE;
        for (ModelLanes lanes : models.values()) {
            wait = Math.min(wait, lanes.nanosUntilNextMove(now, stopping));
        }
        return wait;
    }

    /** One model's lanes, default and flex, and its workers' slots. Used by the loop only, except {@link #capacity}. */
    private final class ModelLanes {
        final Capacity capacity;
        final Lane standard;
        final Lane flex;
        /** Whether a ready batch found no slot free, since it last found one. */
        boolean blocked;

        ModelLanes(String model, Capacity capacity) {
            this.capacity = capacity;
            this.standard = new Lane(new LaneId(model, ServiceTier.DEFAULT), lanePolicy.get());
            this.flex = new Lane(new LaneId(model, ServiceTier.FLEX), lanePolicy.get());
        }

        Lane lane(ServiceTier tier) {
            return tier == ServiceTier.FLEX ? flex : standard;
        }

        /** Sends this model's ready batches while its workers have slots free. */
        void dispatch(long now, boolean everything) {
            long maxWait = policy.maxWait().toNanos();
            ToIntFunction<BatchKey> batchSize = key -> key.batchSize(policy);
            standard.purge();
            flex.purge();
            while (true) {
                Lane from = standard;
                Set<BatchKey> ready = standard.ready(now, maxWait, batchSize, everything, flex::count);
                if (ready.isEmpty()) {
                    if (!standard.isEmpty()) {
                        blocked = false;
                        return; // default requests wait: flex does not start
                    }
                    from = flex;
                    ready = flex.ready(now, maxWait, batchSize, everything, key -> 0);
                    if (ready.isEmpty()) {
                        blocked = false;
                        return;
                    }
                }
                Optional<Capacity.Slot> slot = capacity.tryAcquire();
                if (slot.isEmpty()) {
                    if (!blocked) {
                        blocked = true;
                        events.blockedOnCapacity(from.id);
                    }
                    return;
                }
                blocked = false;
                slotInHand = slot.get();
                List<Queued> members = from.take(ready, batchSize);
                inHand = members;
                int flexSeats = 0;
                int seats = members.isEmpty() ? 0 : batchSize.applyAsInt(members.getFirst().key);
                if (from == standard && !members.isEmpty() && members.size() < seats) {
                    List<Queued> seated = flex.take(members.getFirst().key, seats - members.size());
                    flexSeats = seated.size();
                    members.addAll(seated);
                }
                if (!members.isEmpty()) {
                    BatchTrigger trigger = members.size() >= seats ? BatchTrigger.FULL
                            : everything ? BatchTrigger.SHUTDOWN : BatchTrigger.MAX_WAIT;
                    departures.leave(slot.get(), from.id, members, flexSeats, trigger);
                } else {
                    slot.get().close(); // every one of them had ended or gone
                }
                inHand = List.of();
                slotInHand = null;
            }
        }

        long nanosUntilNextMove(long now, boolean stopping) {
            if (standard.isEmpty() && flex.isEmpty()) {
                return Long.MAX_VALUE;
            }
            if (blocked) {
                return CAPACITY_RECHECK_NANOS;
            }
            if (stopping) {
                return 0;
            }
            Lane moving = standard.isEmpty() ? flex : standard;
            long due = moving.nextDue(policy.maxWait().toNanos());
            return Math.max(0, due - now);
        }
    }
}
