package dev.batchgateway.completion;

import java.time.Duration;
import java.util.Objects;

/**
 * How the scheduler batches.
 *
 * @param batchSize the most prompts in one worker call
 * @param maxWait how long the first request of a partial batch waits for others, from its arrival, before the batch is sent
 * @param maxConcurrentBatches the most worker calls in flight at once for each model whose workers do not count their own
 *     slots ({@link WorkerApi#capacity}); further batches wait in their lane
 * @param queueCapacity the most requests admitted but not yet sent to the worker
 * @param requestTimeout the longest a request may take from arrival to answer
 * @param workerTimeout the longest one worker call may take before its callers are answered 504
 * @param flexRequestTimeout the longest a flex-tier request may take from arrival to answer (it waits for idle
 *     capacity); flex requests may hold at most half of {@code queueCapacity}
 * @param embeddingsBatchSize the most inputs to embed in one worker call (embeddings are small and many: a batch size
 *     of their own); they leave by the same {@code maxWait}
 */
public record SchedulerPolicy(
        int batchSize,
        Duration maxWait,
        int maxConcurrentBatches,
        int queueCapacity,
        Duration requestTimeout,
        Duration workerTimeout,
        Duration flexRequestTimeout,
        int embeddingsBatchSize) {

    /** The longest any request may take from arrival to answer, whatever its tier. */
    public Duration longestRequestTimeout() {
        return requestTimeout.compareTo(flexRequestTimeout) >= 0 ? requestTimeout : flexRequestTimeout;
    }

    /** The default {@code GATEWAY_FLEX_REQUEST_TIMEOUT}. */
    public static final Duration FLEX_REQUEST_TIMEOUT = Duration.ofMinutes(15);

    /** The default {@code GATEWAY_EMBEDDINGS_BATCH_SIZE}. */
    public static final int EMBEDDINGS_BATCH_SIZE = 64;

    /** A policy whose inputs to embed go {@link #EMBEDDINGS_BATCH_SIZE} to a call. */
    public SchedulerPolicy(
            int batchSize, Duration maxWait, int maxConcurrentBatches, int queueCapacity, Duration requestTimeout,
            Duration workerTimeout, Duration flexRequestTimeout) {
        this(batchSize, maxWait, maxConcurrentBatches, queueCapacity, requestTimeout, workerTimeout, flexRequestTimeout,
                EMBEDDINGS_BATCH_SIZE);
    }

    /** A policy whose flex requests may wait {@link #FLEX_REQUEST_TIMEOUT}. */
    public SchedulerPolicy(
            int batchSize, Duration maxWait, int maxConcurrentBatches, int queueCapacity, Duration requestTimeout,
            Duration workerTimeout) {
        this(batchSize, maxWait, maxConcurrentBatches, queueCapacity, requestTimeout, workerTimeout, FLEX_REQUEST_TIMEOUT);
    }

    public SchedulerPolicy {
        Objects.requireNonNull(maxWait, "maxWait");
        Objects.requireNonNull(requestTimeout, "requestTimeout");
        Objects.requireNonNull(workerTimeout, "workerTimeout");
        Objects.requireNonNull(flexRequestTimeout, "flexRequestTimeout");
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be at least 1, was " + batchSize);
        }
        if (embeddingsBatchSize < 1) {
            throw new IllegalArgumentException("embeddings batch size must be at least 1, was " + embeddingsBatchSize);
        }
        if (maxWait.isNegative()) {
            throw new IllegalArgumentException("max wait must not be negative, was " + maxWait);
        }
        if (maxConcurrentBatches < 1) {
            throw new IllegalArgumentException("max concurrent batches must be at least 1, was " + maxConcurrentBatches);
        }
        if (queueCapacity < 1) {
            throw new IllegalArgumentException("queue capacity must be at least 1, was " + queueCapacity);
        }
        if (!requestTimeout.isPositive()) {
            throw new IllegalArgumentException("request timeout must be positive, was " + requestTimeout);
        }
        if (!workerTimeout.isPositive()) {
            throw new IllegalArgumentException("worker timeout must be positive, was " + workerTimeout);
        }
        if (!flexRequestTimeout.isPositive()) {
            throw new IllegalArgumentException("flex request timeout must be positive, was " + flexRequestTimeout);
        }
    }

    /** The most flex-tier requests admitted and not yet sent: half the queue, so default traffic always finds room. */
    public int flexQueueCapacity() {
        return queueCapacity / 2;
    }

    /** The longest a request of this tier may take from arrival to answer. */
    public Duration requestTimeout(ServiceTier tier) {
        return tier == ServiceTier.FLEX ? flexRequestTimeout : requestTimeout;
    }
}
