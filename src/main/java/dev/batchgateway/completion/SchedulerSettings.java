package dev.batchgateway.completion;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.time.Duration;

/**
 * The scheduler's settings, bound from {@code gateway.*}: {@code GATEWAY_BATCH_SIZE}, {@code GATEWAY_BATCH_MAX_WAIT},
 * {@code GATEWAY_EMBEDDINGS_BATCH_SIZE}, {@code GATEWAY_QUEUE_CAPACITY}, {@code GATEWAY_REQUEST_TIMEOUT} and {@code GATEWAY_FLEX_REQUEST_TIMEOUT}. With what the workers say (how many batches they
 * take at once, how long a call may take) they make the {@link SchedulerPolicy}.
 */
public record SchedulerSettings(
        Batch batch, int queueCapacity, Duration requestTimeout, Duration flexRequestTimeout, Embeddings embeddings) {

    public SchedulerSettings {
        embeddings = embeddings == null ? new Embeddings(SchedulerPolicy.EMBEDDINGS_BATCH_SIZE) : embeddings;
        flexRequestTimeout = flexRequestTimeout == null ? SchedulerPolicy.FLEX_REQUEST_TIMEOUT : flexRequestTimeout;
        require(flexRequestTimeout.isPositive(),
                "GATEWAY_FLEX_REQUEST_TIMEOUT must be a positive duration (e.g. 15m), was " + flexRequestTimeout);
        require(batch != null, "gateway.batch must be configured");
        require(queueCapacity >= 1, "GATEWAY_QUEUE_CAPACITY must be at least 1, was " + queueCapacity);
        require(requestTimeout != null && requestTimeout.isPositive(),
                "GATEWAY_REQUEST_TIMEOUT must be a positive duration (e.g. 30s), was " + requestTimeout);
    }

    /**
     * The policy of a scheduler in front of workers each call of which takes at most {@code workerTimeout};
     * {@code batchesPerModel} is how many batches at once a model's workers take when they count no slots of their own.
     */
    public SchedulerPolicy policy(int batchesPerModel, Duration workerTimeout) {
        return new SchedulerPolicy(batch.size(), batch.maxWait(), batchesPerModel, queueCapacity, requestTimeout,
                workerTimeout, flexRequestTimeout, embeddings.batchSize());
    }

    /** The most prompts in one worker call, and how long a partial batch waits for company. */
    public record Batch(int size, Duration maxWait) {
        public Batch {
            require(size >= 1, "GATEWAY_BATCH_SIZE must be at least 1, was " + size);
            require(maxWait != null && !maxWait.isNegative(), "GATEWAY_BATCH_MAX_WAIT must not be negative, was " + maxWait);
        }
    }

    /** The most inputs to embed in one worker call ({@code GATEWAY_EMBEDDINGS_BATCH_SIZE}). */
    public record Embeddings(int batchSize) {
        public Embeddings {
            require(batchSize >= 1, "GATEWAY_EMBEDDINGS_BATCH_SIZE must be at least 1, was " + batchSize);
        }
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new InvalidConfigurationException(message);
        }
    }
}
