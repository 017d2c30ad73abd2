package dev.batchgateway.identity;

import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * API keys: issues them, lists and revokes them, and tells who a presented key belongs to.
 *
 * <p>Lookups are cached for {@code cacheFor}, found or not, so the hot path asks the store at most once per key and
 * period; that period is also how long another instance may still accept a key revoked here (this instance forgets it
 * at once). While the store is away, a key looked up before keeps its last answer, so that known callers are served
 * on (their usage waits in the usage ledger); a key never seen is refused with the store's failure. When last used is recorded in memory and written for all keys at once every {@code lastUseEvery}, never
 * once per request.
 */
public final class ApiKeys implements AutoCloseable {

    private final ApiKeyStore store;
    private final InstantSource clock;
    private final SecureRandom random;
    private final long cacheForMillis;
    private final int cacheCapacity;
    private final Duration lastUseEvery;
    private final Map<String, Cached> cache = new ConcurrentHashMap<>();
    private final Map<UUID, Instant> lastUse = new ConcurrentHashMap<>();
    private Thread lastUseWriter;

    private record Cached(ApiKey key, long expiresAtMillis) {}

    /**
     * @param cacheFor how long a lookup is trusted: the bound on revocation across instances
     * @param cacheCapacity most digests remembered at once (unknown ones too, so a flood of made-up keys stays bounded)
     * @param lastUseEvery how often last-used times are written
     */
    public ApiKeys(ApiKeyStore store, InstantSource clock, SecureRandom random, Duration cacheFor, int cacheCapacity,
            Duration lastUseEvery) {
        this.store = Objects.requireNonNull(store, "store");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.random = Objects.requireNonNull(random, "random");
        this.cacheForMillis = cacheFor.toMillis();
        this.cacheCapacity = cacheCapacity;
        this.lastUseEvery = lastUseEvery;
        if (cacheCapacity < 1 || !lastUseEvery.isPositive() || cacheFor.isNegative()) {
            throw new IllegalArgumentException("cache capacity and last-use period must be positive");
        }
    }

    /** Starts writing last-used times in the background; {@link #close()} writes the last ones and stops. */
    public ApiKeys start() {
        lastUseWriter = Thread.ofVirtual().name("api-key-last-use").start(() -> {
            while (true) {
                try {
                    Thread.sleep(lastUseEvery); // a period between writes, not a synchronisation
                } catch (InterruptedException shutDown) {
                    writeLastUse();
                    return;
                }
                writeLastUse();
            }
        });
        return this;
    }

    /** A new key for a user; its secret is in the answer and nowhere else. */
    public IssuedKey issue(long userId, String name) {
        String secret = Secrets.newSecret(random);
        // PostgreSQL keeps microseconds: the creation answer shows the time the listing will show
        Instant created = clock.instant().truncatedTo(ChronoUnit.MICROS);
        var key = new ApiKey(UUID.randomUUID(), Secrets.displayPrefix(secret), userId, name, created, null, null);
        store.add(key, Secrets.sha256(secret));
        return new IssuedKey(key, secret);
    }

    public List<ApiKey> ofUser(long userId) {
        return store.ofUser(userId);
    }

    /** Revokes a key: refused here at once, on every other instance within the cache period. False when unknown. */
    public boolean revoke(UUID id) {
        boolean known = store.revoke(id, clock.instant());
        cache.values().removeIf(cached -> cached.key() != null && cached.key().id().equals(id));
        return known;
    }

    /** The user a presented key belongs to; empty for anything that is not a valid, unrevoked key. */
    public Optional<Caller.User> identify(String presented) {
        if (!Secrets.wellFormed(presented)) {
            return Optional.empty();
        }
        byte[] digest = Secrets.sha256(presented);
        String cacheKey = HexFormat.of().formatHex(digest);
        long now = clock.millis();
        Cached cached = cache.get(cacheKey);
        if (cached == null || cached.expiresAtMillis() <= now) {
            ApiKey found;
            try {
                found = store.findByDigest(digest).orElse(null);
            } catch (KeyStoreUnavailableException away) {
                if (cached == null) {
                    throw away;
                }
                // the store is away (and nobody can revoke meanwhile): the last answer holds, asked again next period
                found = cached.key();
            }
            cached = new Cached(found, now + cacheForMillis);
            remember(cacheKey, cached, now);
        }
        ApiKey key = cached.key();
        if (key == null || key.revoked()) {
            return Optional.empty();
        }
        lastUse.put(key.id(), clock.instant());
        return Optional.of(new Caller.User(key.userId(), key.id()));
    }

    /** Writes the last-used times gathered since the last write; kept for the next write when the store fails. */
    public void writeLastUse() {
        var batch = new HashMap<UUID, Instant>();
        for (UUID id : lastUse.keySet()) {
            Instant at = lastUse.remove(id);
            if (at != null) {
                batch.put(id, at);
            }
        }
        if (batch.isEmpty()) {
            return;
        }
        try {
            store.markUsed(batch);
        } catch (RuntimeException storeAway) {
            batch.forEach((id, at) -> lastUse.merge(id, at, (newer, older) -> newer.isAfter(older) ? newer : older));
        }
    }

    private void remember(String cacheKey, Cached entry, long now) {
        if (cache.size() >= cacheCapacity) {
            cache.values().removeIf(old -> old.expiresAtMillis() <= now);
            if (cache.size() >= cacheCapacity) {
                cache.clear(); // only a flood of distinct keys gets here; the store answers the next lookups
            }
        }
        cache.put(cacheKey, entry);
    }

    @Override
    public void close() throws InterruptedException {
        if (lastUseWriter != null) {
            lastUseWriter.interrupt();
            lastUseWriter.join(Duration.ofSeconds(10));
        } else {
            writeLastUse();
        }
    }
}
