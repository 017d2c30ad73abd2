package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.WorkerApi;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Spreads batches over several inference servers of the same model.
 *
 * <p>Each batch goes to the worker in rotation with the fewest batches in flight, and no worker gets more than
 * {@code maxBatchesPerWorker} at once. A worker whose call could not connect or timed out leaves the rotation for a
 * back-off period; after it, the next batch to arrive starts a probe of the worker's health endpoint (in the
 * background, the batch does not wait for it), and only a healthy answer brings the worker back. Each failed probe
 * doubles the back-off, up to {@code maxBackOff}; a successful batch resets it. With no worker in rotation a batch fails
 * at once with {@link WorkerException.Unavailable} instead of waiting for a timeout; when the workers in rotation are
 * all at their limit (because others are out), the batch waits for a slot.
 *
 * <p>Hand-written rather than a Resilience4j circuit breaker per worker: a breaker's half-open state lets trial
 * <em>calls</em> through (real batches whose callers would pay for the probe), while a worker here comes back only
 * through its health endpoint; and picking the least-loaded worker needs the in-flight counts anyway.
 */
final class WorkerPool implements WorkerApi, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(WorkerPool.class);
    /** How often a batch waiting for room looks again, so that a worker whose back-off ended gets its probe. */
    private static final long SLOT_RECHECK_MILLIS = 100;

    private final List<Member> members;
    private final String model;
    private final int maxBatchesPerWorker;
    private final Duration firstBackOff;
    private final Duration maxBackOff;
    private final Ticker ticker;
    private int nextStart;

    WorkerPool(List<? extends RemoteWorker> workers, int maxBatchesPerWorker, Duration firstBackOff, Duration maxBackOff, Ticker ticker) {
        if (workers.isEmpty()) {
            throw new IllegalArgumentException("a pool holds at least one worker");
        }
        if (maxBatchesPerWorker < 1) {
            throw new IllegalArgumentException("max batches per worker must be at least 1, was " + maxBatchesPerWorker);
        }
        this.members = workers.stream().map(Member::new).toList();
        this.model = workers.getFirst().model();
        this.maxBatchesPerWorker = maxBatchesPerWorker;
        this.firstBackOff = Objects.requireNonNull(firstBackOff, "firstBackOff");
        this.maxBackOff = maxBackOff.compareTo(firstBackOff) < 0 ? firstBackOff : maxBackOff;
        this.ticker = Objects.requireNonNull(ticker, "ticker");
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        Member member = take();
        try {
            List<WorkerOutcome> outcomes = member.worker.complete(batch);
            succeeded(member);
            return outcomes;
        } catch (WorkerException.Unavailable | WorkerException.TimedOut e) {
            takeOut(member, e);
            throw e;
        } finally {
            release(member);
        }
    }

    @Override
    public String model() {
        return model;
    }

    /** Each worker's health check, by URL: the pool is ready when one of them answers. */
    Map<String, Boolean> health() {
        Map<String, Boolean> health = new LinkedHashMap<>();
        for (Member member : members) {
            health.put(member.worker.url(), member.worker.healthy());
        }
        return health;
    }

    /** Whether the worker at this URL is in rotation now. */
    synchronized boolean inRotation(String url) {
        return members.stream().anyMatch(member -> member.worker.url().equals(url) && !member.out);
    }

    /** Whether a health probe of the worker at this URL is running now. */
    synchronized boolean probing(String url) {
        return members.stream().anyMatch(member -> member.worker.url().equals(url) && member.probing);
    }

    private synchronized Member take() {
        while (true) {
            long now = ticker.nanoTime();
            Member chosen = null;
            boolean anyInRotation = false;
            int start = nextStart;
            nextStart = (nextStart + 1) % members.size(); // equal loads take turns
            for (int i = 0; i < members.size(); i++) {
                Member member = members.get((start + i) % members.size());
                if (member.out) {
                    if (now - member.retryAt >= 0 && !member.probing) {
                        probe(member);
                    }
                    continue;
                }
                anyInRotation = true;
                if (member.inFlight < maxBatchesPerWorker && (chosen == null || member.inFlight < chosen.inFlight)) {
                    chosen = member;
                }
            }
            if (chosen != null) {
                chosen.inFlight++;
                return chosen;
            }
            if (!anyInRotation) {
                throw new WorkerException.Unavailable(
                        "no worker is in rotation: each failed its last call and waits out its back-off");
            }
            // the workers in rotation are all busy (others are out): wait for a slot, as the batch would have in the
            // scheduler's queue; the scheduler's worker timeout bounds the wait by interrupting it
            try {
                wait(SLOT_RECHECK_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new WorkerException.TimedOut("no worker had room for the batch before its timeout", e);
            }
        }
    }

    private synchronized void release(Member member) {
        member.inFlight--;
        notifyAll();
    }

    private synchronized void succeeded(Member member) {
        if (member.out) {
            LOG.info("worker {} answered a batch again; back in rotation", member.worker.url());
        }
        member.out = false;
        member.backOff = null;
    }

    private synchronized void takeOut(Member member, WorkerException failure) {
        if (member.out) {
            return;
        }
        member.out = true;
        member.backOff = member.backOff == null ? firstBackOff : doubled(member.backOff);
        member.retryAt = ticker.nanoTime() + member.backOff.toNanos();
        LOG.warn("worker {} out of rotation for {} ms: {}", member.worker.url(), member.backOff.toMillis(), failure.getMessage());
    }

    private void probe(Member member) {
        member.probing = true;
        Thread.ofVirtual().name("worker-probe").start(() -> {
            boolean healthy = member.worker.healthy();
            synchronized (this) {
                member.probing = false;
                if (!member.out) {
                    return;
                }
                if (healthy) {
                    member.out = false;
                    notifyAll();
                    LOG.info("worker {} answered its health check; back in rotation", member.worker.url());
                } else {
                    member.backOff = doubled(member.backOff);
                    member.retryAt = ticker.nanoTime() + member.backOff.toNanos();
                    LOG.warn("worker {} failed its health check; next probe in {} ms", member.worker.url(), member.backOff.toMillis());
                }
            }
        });
    }

    private Duration doubled(Duration backOff) {
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
        long retryAt;
        Duration backOff;

        Member(RemoteWorker worker) {
            this.worker = worker;
        }
    }
}
