package dev.batchgateway.identity;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Keys in memory, counting lookups and recording last-use writes; {@link #away} makes every call fail like a dead
 * database, and {@link #holdLookups()} makes lookups wait, like a database that does not answer, until
 * {@link #letLookupsGo()}.
 */
final class MemoryKeyStore implements ApiKeyStore {

    final Map<String, ApiKey> byDigest = new ConcurrentHashMap<>();
    final AtomicInteger lookups = new AtomicInteger();
    final List<Map<UUID, Instant>> lastUseWrites = new CopyOnWriteArrayList<>();
    volatile boolean away;
    private volatile CountDownLatch held = new CountDownLatch(0);

    /** Lookups from now on wait until {@link #letLookupsGo()}, then answer or fail as {@link #away} says. */
    void holdLookups() {
        held = new CountDownLatch(1);
    }

    void letLookupsGo() {
        held.countDown();
    }

    @Override
    public void add(ApiKey key, byte[] digest) {
        reachable();
        byDigest.put(HexFormat.of().formatHex(digest), key);
    }

    @Override
    public Optional<ApiKey> findByDigest(byte[] digest) {
        lookups.incrementAndGet();
        try {
            if (!held.await(60, TimeUnit.SECONDS)) {
                throw new IllegalStateException("a held lookup was never let go");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KeyStoreUnavailableException("interrupted", e);
        }
        reachable();
        return Optional.ofNullable(byDigest.get(HexFormat.of().formatHex(digest)));
    }

    @Override
    public List<KeptKey> mostRecentlyUsed(int most) {
        reachable();
        return byDigest.entrySet().stream().filter(kept -> !kept.getValue().revoked()).limit(most)
                .map(kept -> new KeptKey(HexFormat.of().parseHex(kept.getKey()), kept.getValue())).toList();
    }

    @Override
    public List<ApiKey> ofUser(long userId) {
        reachable();
        var keys = new ArrayList<>(byDigest.values().stream().filter(key -> key.userId() == userId).toList());
        keys.sort(Comparator.comparing(ApiKey::createdAt));
        return keys;
    }


    @Override
    public Optional<ApiKey> revoke(UUID id, Instant at) {
        reachable();
        for (var entry : byDigest.entrySet()) {
            ApiKey key = entry.getValue();
            if (key.id().equals(id)) {
                var revoked = new ApiKey(key.id(), key.prefix(), key.userId(), key.name(), key.createdAt(),
                        key.revoked() ? key.revokedAt() : at, key.lastUsedAt(), key.terms());
                entry.setValue(revoked);
                return Optional.of(revoked);
            }
        }
        return Optional.empty();
    }

    @Override
    public void markUsed(Map<UUID, Instant> lastUse) {
        reachable();
        lastUseWrites.add(Map.copyOf(lastUse));
    }

    private void reachable() {
        if (away) {
            throw new KeyStoreUnavailableException("the key store is away", null);
        }
    }
}
