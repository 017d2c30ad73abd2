package dev.batchgateway.identity;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.time.Duration;

/**
 * How API key answers are cached and age, bound from {@code gateway.key.*} ({@code GATEWAY_KEY_…}); each unset but the
 * first is its default.
 *
 * @param maxStaleness the longest an instance that cannot reach the database keeps honouring what it last learnt of a
 *     key; after it, keys it cannot check get 503. It bounds how long a revoked key keeps working on a partitioned
 *     instance (at least 5s)
 * @param lookupWait the longest a request waits for a key lookup; a slower database is taken as away (default 800ms:
 *     the contract is 503 for unknown keys within 1 s; on a loaded machine a first lookup took over 300 ms)
 * @param storeProbeEvery while the database is away, how often one key lookup checks whether it is back (default 1s)
 * @param cacheCapacity the most found keys cached at once, about 200 bytes each (default 10000)
 * @param unknownCacheCapacity the most unknown keys cached at once, apart from found ones: a flood of made-up keys
 *     never evicts a real one (default 10000)
 * @param lookupsAtOnce the most lookups of keys without an answer at once; a flood beyond it gets 503 (default 32, a few
 *     times the database pool's 10 connections)
 * @param lastUseWrittenEvery how often keys' last-used times are written, all keys used in between in one statement
 *     (default 10s)
 */
public record KeySettings(
        Duration maxStaleness,
        Duration lookupWait,
        Duration storeProbeEvery,
        Integer cacheCapacity,
        Integer unknownCacheCapacity,
        Integer lookupsAtOnce,
        Duration lastUseWrittenEvery) {

    /**
     * How old a key's answer may be before it is re-checked; twice it, plus a lookup, bounds revocation (contract: 5 s).
     * Not a setting: the revocation contract rests on it.
     */
    public static final Duration RECHECK_AFTER = Duration.ofSeconds(2);
    /** Below this, a key refused while the database is away would differ from one refused by revocation: 2 × 2 s + a lookup. */
    static final Duration MIN_MAX_STALENESS = Duration.ofSeconds(5);

    public KeySettings {
        if (maxStaleness == null || maxStaleness.compareTo(MIN_MAX_STALENESS) < 0) {
            throw new InvalidConfigurationException("GATEWAY_KEY_MAX_STALENESS must be at least " + MIN_MAX_STALENESS.toSeconds()
                    + "s (keys are re-checked every 2s, and revocation reaches instances that reach the database within 5s), was "
                    + (maxStaleness == null ? "empty" : maxStaleness.toMillis() + " ms"));
        }
        lookupWait = lookupWait == null ? Duration.ofMillis(800) : lookupWait;
        storeProbeEvery = storeProbeEvery == null ? Duration.ofSeconds(1) : storeProbeEvery;
        cacheCapacity = cacheCapacity == null ? 10_000 : cacheCapacity;
        unknownCacheCapacity = unknownCacheCapacity == null ? 10_000 : unknownCacheCapacity;
        lookupsAtOnce = lookupsAtOnce == null ? 32 : lookupsAtOnce;
        lastUseWrittenEvery = lastUseWrittenEvery == null ? Duration.ofSeconds(10) : lastUseWrittenEvery;
        requirePositive(lookupWait, "GATEWAY_KEY_LOOKUP_WAIT");
        requirePositive(storeProbeEvery, "GATEWAY_KEY_STORE_PROBE_EVERY");
        requirePositive(lastUseWrittenEvery, "GATEWAY_KEY_LAST_USE_WRITTEN_EVERY");
        atLeastOne(cacheCapacity, "GATEWAY_KEY_CACHE_CAPACITY");
        atLeastOne(unknownCacheCapacity, "GATEWAY_KEY_UNKNOWN_CACHE_CAPACITY");
        atLeastOne(lookupsAtOnce, "GATEWAY_KEY_LOOKUPS_AT_ONCE");
    }

    /** How {@link ApiKeys} caches its answers. */
    public ApiKeys.Caching caching() {
        return new ApiKeys.Caching(RECHECK_AFTER, maxStaleness, lookupWait, storeProbeEvery, cacheCapacity, unknownCacheCapacity,
                lookupsAtOnce);
    }

    private static void requirePositive(Duration duration, String variable) {
        if (!duration.isPositive()) {
            throw new InvalidConfigurationException(variable + " must be a positive duration (e.g. 1s), was " + duration);
        }
    }

    private static void atLeastOne(int value, String variable) {
        if (value < 1) {
            throw new InvalidConfigurationException(variable + " must be at least 1, was " + value);
        }
    }
}
