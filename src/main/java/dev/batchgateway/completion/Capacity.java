package dev.batchgateway.completion;

import java.util.List;
import java.util.Optional;

/**
 * The batch slots of one model's workers, in the manner of Netflix concurrency-limits' {@code Limiter}: a batch takes a
 * slot without waiting, or learns at once that there is none, and gives it back when its call has ended. The workers'
 * pool owns its slots (each worker's {@code max-concurrent-batches}); the scheduler holds requests in their lane, not a
 * thread, while a model has no slot free.
 */
public interface Capacity {

    /** A slot for one batch, now, or empty when every slot is taken. Never waits. */
    Optional<Slot> tryAcquire();

    /** Slots taken now. */
    int inUse();

    /** A batch's place on a worker: the batch's call goes through it, and closing it gives the slot back. */
    interface Slot extends AutoCloseable {

        /**
         * Sends the batch to this slot's worker, as {@link WorkerApi#call(Batch, BatchProgress)} does: completes it, or
         * embeds a batch of embeddings.
         */
        List<WorkerOutcome> complete(Batch batch, BatchProgress progress);

        /** Gives the slot back, once the call has ended (its outcome is known to the slot); later calls do nothing. */
        @Override
        void close();
    }
}
