package dev.batchgateway.completion;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import java.util.function.ToIntFunction;

/**
 * The requests of one model in one service tier, waiting for their batches. A lane knows which of its batch keys are
 * ready to leave (a batch's worth waiting, or the oldest has waited max-wait) and seats requests in the order of its
 * {@link LanePolicy}. Used by the dispatching thread only, except {@link #ended(Queued)}.
 */
final class Lane {

    final LaneId id;
    private final LanePolicy order;
    /** Each batch key's waiting requests, in the order they came: the first is the one whose max-wait runs out first. */
    private final Map<BatchKey, LinkedHashSet<Queued>> byKey = new LinkedHashMap<>();
    private final AtomicBoolean someEnded = new AtomicBoolean();
    private int size;

    Lane(LaneId id, LanePolicy order) {
        this.id = id;
        this.order = order;
    }

    void add(Queued request) {
        byKey.computeIfAbsent(request.key, key -> new LinkedHashSet<>()).add(request);
        order.add(request);
        size++;
    }

    /** A request of this lane ended while it waited; it is forgotten on the next {@link #purge()}. Any thread. */
    void ended(Queued request) {
        someEnded.set(true);
        order.ended(request);
    }

    /** Forgets the requests that ended while they waited (cancelled, expired). */
    void purge() {
        if (someEnded.getAndSet(false)) {
            forgetEnded();
        }
    }

    private void forgetEnded() {
        size = 0;
        byKey.values().removeIf(waiting -> {
            waiting.removeIf(Queued::isDone);
            size += waiting.size();
            return waiting.isEmpty();
        });
        order.removeIf(Queued::isDone);
    }

    boolean isEmpty() {
        return size == 0;
    }

    /** How many requests of this batch key wait here. */
    int count(BatchKey key) {
        LinkedHashSet<Queued> waiting = byKey.get(key);
        return waiting == null ? 0 : waiting.size();
    }

    /**
     * The batch keys whose batch may leave now: with {@code alsoSeated} more requests that would sit in it, a batch's
     * worth (of its key's {@code batchSize}) waits, or the first has waited max-wait since it arrived, or {@code
     * everything} goes (shutdown).
     */
    Set<BatchKey> ready(long now, long maxWaitNanos, ToIntFunction<BatchKey> batchSize, boolean everything,
            ToIntFunction<BatchKey> alsoSeated) {
        Set<BatchKey> ready = new HashSet<>();
        byKey.forEach((key, waiting) -> {
            if (everything
                    || waiting.size() + alsoSeated.applyAsInt(key) >= batchSize.applyAsInt(key)
                    || now - waiting.getFirst().arrivedAt >= maxWaitNanos) {
                ready.add(key);
            }
        });
        return ready;
    }

    /** When the first batch of this lane is due by max-wait, in ticker nanoseconds; {@link Long#MAX_VALUE} when empty. */
    long nextDue(long maxWaitNanos) {
        long due = Long.MAX_VALUE;
        for (LinkedHashSet<Queued> waiting : byKey.values()) {
            due = Math.min(due, waiting.getFirst().arrivedAt + maxWaitNanos);
        }
        return due;
    }

    /**
     * Seats up to a batch of requests of one of the {@code ready} keys ({@code seats} of its key), the first chosen by
     * the lane's policy among them all, the others of its key. Each seated request is marked sent: one that has ended
     * or whose caller has gone is dropped instead (the last moment to spare the worker).
     */
    List<Queued> take(Set<BatchKey> ready, ToIntFunction<BatchKey> seats) {
        List<Queued> taken = new ArrayList<>();
        Queued first = nextSendable(request -> ready.contains(request.key));
        if (first != null) {
            taken.add(first);
            taken.addAll(take(first.key, seats.applyAsInt(first.key) - 1));
        } else {
            // the ready keys' requests all ended before the lane heard of it (the policy dropped them already): left
            // here, they would make those keys ready again at once, and the dispatcher would spin on them
            forgetEnded();
        }
        return taken;
    }

    /** Seats up to {@code seats} requests of {@code key}, in the policy's order, as {@link #take(Set, int)} does. */
    List<Queued> take(BatchKey key, int seats) {
        List<Queued> taken = new ArrayList<>(Math.max(0, seats));
        while (taken.size() < seats) {
            Queued next = nextSendable(request -> request.key.equals(key));
            if (next == null) {
                break;
            }
            taken.add(next);
        }
        return taken;
    }

    private Queued nextSendable(Predicate<Queued> eligible) {
        while (true) {
            Queued next = order.next(request -> !request.isDone() && eligible.test(request));
            if (next == null) {
                return null;
            }
            LinkedHashSet<Queued> waiting = byKey.get(next.key);
            waiting.remove(next);
            if (waiting.isEmpty()) {
                byKey.remove(next.key);
            }
            size--;
            if (!next.isDone() && !next.callerGone() && next.markSent()) {
                return next;
            }
        }
    }

    /** Every request still waiting here, taken out (at shutdown, to be answered). */
    List<Queued> drain() {
        List<Queued> all = new ArrayList<>(size);
        byKey.values().forEach(all::addAll);
        byKey.clear();
        order.removeIf(request -> true);
        size = 0;
        return all;
    }
}
