package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * A pool member that does what the test says: answers, throws, or holds each call until released. Records the
 * batches it was given and the health probes it answered.
 */
final class ScriptedWorker implements RemoteWorker {

    final String url;
    final List<Batch> batches = new CopyOnWriteArrayList<>();
    final AtomicInteger probes = new AtomicInteger();
    volatile Supplier<WorkerException> failure;
    volatile boolean healthy = true;
    /** Down because it refuses the gateway's key or serves another model (when not healthy). */
    volatile boolean misconfigured;
    volatile CountDownLatch hold;

    ScriptedWorker(String url) {
        this.url = url;
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        batches.add(batch);
        CountDownLatch gate = hold;
        if (gate != null) {
            try {
                if (!gate.await(30, TimeUnit.SECONDS)) {
                    throw new AssertionError("held call never released");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new WorkerException.TimedOut("interrupted", e);
            }
        }
        Supplier<WorkerException> fail = failure;
        if (fail != null) {
            throw fail.get();
        }
        return batch.prompts().stream()
                .<WorkerOutcome>map(p -> new WorkerOutcome.Generated(url + ":" + p, new TokenUsage(1, 1), FinishReason.STOP))
                .toList();
    }

    @Override
    public String model() {
        return "m";
    }

    @Override
    public String url() {
        return url;
    }

    @Override
    public WorkerHealth health() {
        probes.incrementAndGet();
        if (healthy) {
            return WorkerHealth.UP;
        }
        return misconfigured ? WorkerHealth.misconfigured(url + " is scripted to refuse the key") : WorkerHealth.down(url + " is scripted to be down");
    }

    @Override
    public void close() {}
}
