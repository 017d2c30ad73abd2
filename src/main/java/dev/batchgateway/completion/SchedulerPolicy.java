package dev.batchgateway.completion;

import java.time.Duration;
import java.util.Objects;

/**
 * How the scheduler batches.
 *
 * @param batchSize the most prompts in one worker call
 * @param maxWait how long the first request of a partial batch waits for others, from its arrival, before the batch is sent
 * @param maxConcurrentBatches the most worker calls in flight at once; further batches wait in the queue
 * @param queueCapacity the most requests admitted but not yet sent to the worker
 * @param requestTimeout the longest a request may take from arrival to answer
 * @param workerTimeout the longest one worker call may take before its callers are answered 504
 */
public record SchedulerPolicy(
        int batchSize,
        Duration maxWait,
        int maxConcurrentBatches,
        int queueCapacity,
        Duration requestTimeout,
        Duration workerTimeout) {

    public SchedulerPolicy {
        Objects.requireNonNull(maxWait, "maxWait");
        Objects.requireNonNull(requestTimeout, "requestTimeout");
        Objects.requireNonNull(workerTimeout, "workerTimeout");
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be at least 1, was " + batchSize);
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
    }
}
