package dev.batchgateway;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * How API key answers age, bound from {@code gateway.key.*}: {@code GATEWAY_KEY_MAX_STALENESS}, the longest an
 * instance that cannot reach the database keeps honouring what it last learnt of a key; after it, keys it cannot
 * check get 503. It bounds how long a revoked key keeps working on a partitioned instance.
 */
@ConfigurationProperties("gateway.key")
public record KeyProperties(Duration maxStaleness) {

    /** Below this, a key refused while the database is away would differ from one refused by revocation: 2 × 2 s + a lookup. */
    static final Duration MIN_MAX_STALENESS = Duration.ofSeconds(5);

    public KeyProperties {
        if (maxStaleness == null || maxStaleness.compareTo(MIN_MAX_STALENESS) < 0) {
            throw new InvalidConfigurationException("GATEWAY_KEY_MAX_STALENESS must be at least " + MIN_MAX_STALENESS.toSeconds()
                    + "s (keys are re-checked every 2s, and revocation reaches instances that reach the database within 5s), was "
                    + (maxStaleness == null ? "empty" : maxStaleness.toMillis() + " ms"));
        }
    }
}
