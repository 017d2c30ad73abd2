package dev.batchgateway.completion;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A fixed number of batch slots for a worker that does not count its own (the simulated worker, test doubles): each
 * batch sent to {@code worker} holds one until its call ends.
 */
final class SlotLimit implements Capacity {

    private final WorkerApi worker;
    private final int slots;
    private final AtomicInteger taken = new AtomicInteger();

    SlotLimit(WorkerApi worker, int slots) {
        if (slots < 1) {
            throw new IllegalArgumentException("a worker has at least one slot, was " + slots);
        }
        this.worker = worker;
        this.slots = slots;
    }

    @Override
    public Optional<Slot> tryAcquire() {
        int now;
        do {
            now = taken.get();
            if (now >= slots) {
                return Optional.empty();
            }
        } while (!taken.compareAndSet(now, now + 1));
        AtomicBoolean given = new AtomicBoolean();
        return Optional.of(new Slot() {
            @Override
            public List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
                return worker.call(batch, progress);
            }

            @Override
            public void close() {
                if (given.compareAndSet(false, true)) {
                    taken.decrementAndGet();
                }
            }
        });
    }

    @Override
    public int inUse() {
        return taken.get();
    }
}
