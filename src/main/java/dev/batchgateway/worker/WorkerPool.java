package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.Capacity;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.WorkerApi;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Spreads batches over several inference servers of the same model.
 *
 * <p>Each batch goes to the worker in rotation with the fewest batches in flight, and no worker gets more than
 * {@code maxBatchesPerWorker} at once. A worker leaves the rotation when it cannot be reached, when it refuses the
 * gateway's set-up (a wrong key, a model it does not serve), or after {@code maxConsecutiveTimeouts} timeouts in a row:
 * one timeout alone is a slow generation on a busy server, not a dead one. It stays out for a back-off period; after
 * it, the next batch to arrive starts a probe of the worker's health check (in the background, the batch does not wait
 * for it), and only a healthy answer brings the worker back. Each failed probe doubles the back-off, up to
 * {@code maxBackOff}; an answered batch resets it.
 *
 * <p>The pool never refuses a batch while a worker can answer. A batch that could not connect to its worker, or that
 * the worker refused as misconfigured, was not generated: it goes to the next worker. With every worker out, a batch
 * probes them itself, now, the one whose back-off ends first first (each probe is bounded to about a second), and is
 * sent to the first that answers — as Envoy routes to every host once too many are ejected. Only when none answers
 * does it fail with {@link WorkerException.Unavailable}, naming why each worker is out.
 *
 * <p>The pool owns its workers' batch slots ({@link Capacity}): a batch takes one on the least-loaded worker without
 * waiting, or learns that all are taken and stays in its lane in the scheduler; its slot is given back when its call
 * ends. No thread ever waits here for a slot.
 *
 * <p>Hand-written rather than a Resilience4j circuit breaker per worker: a breaker's half-open state lets trial
 * <em>calls</em> through (real batches whose callers would pay for the probe), while a worker here comes back only
 * through its health check; and picking the least-loaded worker needs the in-flight counts anyway.
 */
final class WorkerPool implements WorkerApi, Capacity, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(WorkerPool.class);
    /** How often a batch waiting for another batch's probe of a worker looks again. */
    private static final long PROBE_RECHECK_MILLIS = 100;

    private final List<Member> members;
    private final String model;
    private final int maxBatchesPerWorker;
    private final int maxConsecutiveTimeouts;
    private final Duration firstBackOff;
    private final Duration maxBackOff;
    private final Ticker ticker;
    private int nextStart;
    /** Slots taken by batches on no worker yet: probing workers that are all out, or moving off one that refused. */
    private int probing;

    WorkerPool(List<? extends RemoteWorker> workers, int maxBatchesPerWorker, Duration firstBackOff, Duration maxBackOff, Ticker ticker) {
        this(workers, maxBatchesPerWorker, 3, firstBackOff, maxBackOff, ticker);
    }

    WorkerPool(
            List<? extends RemoteWorker> workers,
            int maxBatchesPerWorker,
            int maxConsecutiveTimeouts,
            Duration firstBackOff,
            Duration maxBackOff,
            Ticker ticker) {
        if (workers.isEmpty()) {
            throw new IllegalArgumentException("a pool holds at least one worker");
        }
        if (maxBatchesPerWorker < 1) {
            throw new IllegalArgumentException("max batches per worker must be at least 1, was " + maxBatchesPerWorker);
        }
        if (maxConsecutiveTimeouts < 1) {
            throw new IllegalArgumentException("max consecutive timeouts must be at least 1, was " + maxConsecutiveTimeouts);
        }
        this.members = workers.stream().map(Member::new).toList();
        this.model = workers.getFirst().model();
        this.maxBatchesPerWorker = maxBatchesPerWorker;
        this.maxConsecutiveTimeouts = maxConsecutiveTimeouts;
        this.firstBackOff = Objects.requireNonNull(firstBackOff, "firstBackOff");
        this.maxBackOff = maxBackOff.compareTo(firstBackOff) < 0 ? firstBackOff : maxBackOff;
        this.ticker = Objects.requireNonNull(ticker, "ticker");
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        return complete(batch, BatchProgress.IGNORED);
    }

    /** Sends the batch on a slot taken now; with every slot taken it fails at once, as unavailable. */
    @Override
    public List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
        try (Slot slot = tryAcquire().orElseThrow(() -> new WorkerException.Unavailable(
                "every worker of model " + model + " is at its limit of batches"))) {
            return slot.complete(batch, progress);
        }
    }

    /** Embeds the batch on a slot taken now, as {@link #complete(Batch, BatchProgress)} completes one. */
    @Override
    public List<WorkerOutcome> embed(Batch batch) {
        return complete(batch, BatchProgress.IGNORED);
    }

    /** The pool owns its workers' batch slots. */
    @Override
    public Optional<Capacity> capacity(String model) {
        return Optional.of(this);
    }

    /**
     * A slot on the worker in rotation with the fewest batches in flight and room for one more; with every worker out,
     * a slot whose batch probes them (at most as many as the pool's slots). Never waits.
     */
    @Override
    public synchronized Optional<Slot> tryAcquire() {
        Member chosen = leastLoadedInRotation();
        if (chosen != null) {
            chosen.inFlight++;
            return Optional.of(new PoolSlot(chosen));
        }
        boolean noneInRotation = members.stream().allMatch(member -> member.out);
        if (noneInRotation && inUse() < members.size() * maxBatchesPerWorker) {
            probing++;
            return Optional.of(new PoolSlot(null));
        }
        return Optional.empty();
    }

    @Override
    public synchronized int inUse() {
        int inUse = probing;
        for (Member member : members) {
            inUse += member.inFlight;
        }
        return inUse;
    }

    /**
     * A batch's place on one worker. A worker that could not be reached or refused the gateway's key or model did so
     * before generating anything (nothing was streamed either), so the batch moves to the next worker with its slot.
     */
    private final class PoolSlot implements Slot {
        /** The worker this slot is on; null while the batch has none (every worker out, or its worker refused it). */
        private Member on;
        private boolean given;

        PoolSlot(Member on) {
            this.on = on;
        }

        @Override
        public List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
            Set<Member> refused = new HashSet<>();
            while (true) {
                if (on == null) {
                    on = take(refused);
                }
                Member member = on;
                try {
                    List<WorkerOutcome> outcomes = member.worker.call(batch, progress);
                    answered(member);
                    return outcomes;
                } catch (WorkerException.Unavailable | WorkerException.Misconfigured e) {
                    takeOut(member, e.getMessage());
                    refused.add(member);
                    moveOff(member);
                    if (refused.size() == members.size()) {
                        throw e;
                    }
                    // not connected, or refused before generating anything: nothing was done, the next worker may serve it
                } catch (WorkerException.TimedOut e) {
                    timedOut(member, e);
                    throw e;
                } catch (WorkerException.BadAnswer | WorkerException.Rejected e) {
                    answered(member); // it answered, if wrongly: alive
                    throw e;
                }
            }
        }

        /** The batch leaves {@code member}: its slot is the pool's again until the batch finds another worker. */
        private void moveOff(Member member) {
            synchronized (WorkerPool.this) {
                member.inFlight--;
                probing++;
                on = null;
                WorkerPool.this.notifyAll();
            }
        }

        @Override
        public void close() {
            synchronized (WorkerPool.this) {
                if (given) {
                    return;
                }
                given = true;
                if (on != null) {
                    on.inFlight--;
                } else {
                    probing--;
                }
                WorkerPool.this.notifyAll();
            }
        }
    }

    @Override
    public String model() {
        return model;
    }

    /**
     * Each worker's health check, by URL: the pool is ready when one of them is up. A worker in rotation found
     * misconfigured (a refused key, a model it does not serve) leaves the rotation, and only a probe brings it back; one
     * that does not answer stays until a batch cannot reach it (a health check bounded to a second says little of a
     * busy server).
     */
    Map<String, WorkerHealth> health() {
        Map<String, WorkerHealth> health = new LinkedHashMap<>();
        for (Member member : members) {
            WorkerHealth found = member.worker.health();
            if (found.misconfigured()) {
                takeOut(member, found.reason());
            }
            health.put(member.worker.url(), found);
        }
        return health;
    }

    /**
     * Checks every worker once, in the background, and logs one line for each that cannot serve; a misconfigured one
     * leaves the rotation at once, so that no batch is sent to a server that would refuse it or run another model.
     */
    void checkAtStartUp() {
        Thread.ofVirtual().name("worker-start-up-check").start(() -> health().forEach((url, health) -> {
            if (health.up()) {
                LOG.info("worker {} serves model {}", url, model);
            } else {
                LOG.error("worker {} cannot serve: {}", url, health.reason());
            }
        }));
    }

    /** The URLs of the pool's workers, in the configured order. */
    List<String> urls() {
        return members.stream().map(member -> member.worker.url()).toList();
    }

    /** Whether the worker at this URL is in rotation now. */
    synchronized boolean inRotation(String url) {
        return member(url).map(member -> !member.out).orElse(false);
    }

    /** Whether a health probe of the worker at this URL is running now. */
    synchronized boolean probing(String url) {
        return member(url).map(member -> member.probing).orElse(false);
    }

    /** The back-off of the worker at this URL: how long it stays out after its last failure; null while it is in. */
    synchronized Duration backOff(String url) {
        return member(url).map(member -> member.out ? member.backOff : null).orElse(null);
    }

    private Optional<Member> member(String url) {
        return members.stream().filter(member -> member.worker.url().equals(url)).findFirst();
    }

    /**
     * The worker a batch without one goes to, its slot moved onto it: the least loaded in rotation, even at its limit
     * (the batch already holds one of the pool's slots, given back by the worker that refused it: one over, briefly, is
     * better than refusing a batch a worker can answer); with none in rotation, probes the workers that are out, now.
     * The {@code refused} workers already failed this batch: they are not probed for it again.
     */
    private Member take(Set<Member> refused) {
        Set<Member> probedForThisBatch = new HashSet<>(refused);
        while (true) {
            Member toProbe;
            synchronized (this) {
                Member chosen = members.stream()
                        .filter(member -> !member.out && !refused.contains(member))
                        .min(Comparator.comparingInt(member -> member.inFlight))
                        .orElse(null);
                if (chosen != null) {
                    chosen.inFlight++;
                    probing--;
                    return chosen;
                }
                toProbe = members.stream()
                        .filter(member -> !probedForThisBatch.contains(member))
                        .min(Comparator.comparingLong(member -> member.retryAt))
                        .orElseThrow(this::noWorkerUsable);
                if (toProbe.probing) {
                    // another probe of it runs: its answer counts for this batch too
                    long probesBefore = toProbe.probes;
                    while (toProbe.probing) {
                        waitForChange("no worker answered its probe before the batch's timeout");
                    }
                    if (toProbe.probes != probesBefore) {
                        probedForThisBatch.add(toProbe);
                    }
                    continue;
                }
                toProbe.probing = true;
            }
            probedForThisBatch.add(toProbe);
            probe(toProbe); // outside the lock: the other batches go on meanwhile
        }
    }

    /** The member in rotation with the fewest batches in flight and room for one more; starts probes that are due. */
    private Member leastLoadedInRotation() {
        long now = ticker.nanoTime();
        Member chosen = null;
        int start = nextStart;
        nextStart = (nextStart + 1) % members.size(); // equal loads take turns
        for (int i = 0; i < members.size(); i++) {
            Member member = members.get((start + i) % members.size());
            if (member.out) {
                if (now - member.retryAt >= 0 && !member.probing) {
                    member.probing = true;
                    Thread.ofVirtual().name("worker-probe").start(() -> probe(member));
                }
                continue;
            }
            if (member.inFlight < maxBatchesPerWorker && (chosen == null || member.inFlight < chosen.inFlight)) {
                chosen = member;
            }
        }
        return chosen;
    }

    private void waitForChange(String timedOut) {
        try {
            wait(PROBE_RECHECK_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new WorkerException.TimedOut(timedOut, e);
        }
    }

    private WorkerException.Unavailable noWorkerUsable() {
        return new WorkerException.Unavailable("no worker can take the batch: " + members.stream()
                .map(member -> member.reason)
                .distinct()
                .collect(Collectors.joining("; ")));
    }

    /** Runs the member's health check (its {@code probing} flag set by the caller) and acts on its answer. */
    private void probe(Member member) {
        WorkerHealth health = member.worker.health();
        synchronized (this) {
            member.probing = false;
            member.probes++;
            notifyAll();
            if (!member.out) {
                return;
            }
            if (health.up()) {
                member.out = false;
                LOG.info("worker {} answered its health check; back in rotation", member.worker.url());
            } else {
                member.reason = health.reason();
                member.backOff = doubled(member.backOff);
                member.retryAt = ticker.nanoTime() + member.backOff.toNanos();
                LOG.warn("worker {} failed its health check; next probe in {} ms: {}",
                        member.worker.url(), member.backOff.toMillis(), health.reason());
            }
        }
    }

    private synchronized void answered(Member member) {
        member.consecutiveTimeouts = 0;
        member.backOff = null;
    }

    private synchronized void timedOut(Member member, WorkerException.TimedOut failure) {
        member.consecutiveTimeouts++;
        if (member.consecutiveTimeouts >= maxConsecutiveTimeouts) {
            takeOut(member, member.consecutiveTimeouts + " calls in a row timed out: " + failure.getMessage());
        }
    }

    private synchronized void takeOut(Member member, String reason) {
        if (member.out) {
            return;
        }
        member.out = true;
        member.reason = reason; // names the worker as callers know it ("worker 2"), never its URL: callers read it
        member.consecutiveTimeouts = 0;
        member.backOff = member.backOff == null ? firstBackOff : doubled(member.backOff);
        member.retryAt = ticker.nanoTime() + member.backOff.toNanos();
        LOG.warn("worker {} out of rotation for {} ms: {}", member.worker.url(), member.backOff.toMillis(), reason);
    }

    private Duration doubled(Duration backOff) {
        if (backOff == null) {
            return firstBackOff;
        }
        Duration twice = backOff.multipliedBy(2);
        return twice.compareTo(maxBackOff) > 0 ? maxBackOff : twice;
    }

    @Override
    public void close() {
        members.forEach(member -> member.worker.close());
    }

    /** A worker and its place in the rotation; guarded by the pool's lock. */
    private static final class Member {
        final RemoteWorker worker;
        int inFlight;
        boolean out;
        boolean probing;
        long probes;
        long retryAt;
        Duration backOff;
        int consecutiveTimeouts;
        String reason = "";

        Member(RemoteWorker worker) {
            this.worker = worker;
        }
    }
}
