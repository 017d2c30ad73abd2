package dev.batchgateway.identity;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Ticker;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * API keys: issues them, lists and revokes them, and tells who a presented key belongs to.
 *
 * <p>Answers are cached, found keys and unknown digests apart (so a flood of made-up keys never evicts a real one),
 * each bounded in size. An answer is as old as the store lookup that gave it, and:
 * <ul>
 *   <li>younger than {@code recheckAfter}: served as it is;
 *   <li>older: re-checked in the background (one lookup per digest at a time, never on the request's thread) and
 *       served meanwhile, up to twice {@code recheckAfter}; beyond that a request waits for the re-check, at most
 *       {@code lookupWait} since it began. So a key revoked on another instance is refused here within twice
 *       {@code recheckAfter} and a lookup, while the store answers;
 *   <li>while the store is away (a lookup failed, or took longer than {@code lookupWait}), served without asking it
 *       until it is {@code maxStaleness} old, then refused as unavailable: an instance cut off from the store stops
 *       honouring what it can no longer check. A digest without an answer is refused as unavailable at once.
 * </ul>
 * While the store is away, one lookup at a time (at most one per {@code probeEvery}, for a key a request presents)
 * finds out whether it is back: not one wait per request. Last used is recorded in memory and written for all keys
 * at once every {@code lastUseEvery}, never once per request.
 */
public final class ApiKeys implements AutoCloseable {

    private final ApiKeyStore store;
    private final InstantSource clock;
    private final Ticker ticker;
    private final Executor lookupRunner;
    private final SecureRandom random;
    private final Caching caching;
    private final Duration lastUseEvery;
    private final Cache<String, Answer> found;
    private final Cache<String, Answer> unknown;
    private final Map<String, Lookup> lookups = new ConcurrentHashMap<>();
    private final AtomicInteger lookupsWithoutAnswer = new AtomicInteger();
    private final AtomicLong revocations = new AtomicLong();
    private final AtomicBoolean probing = new AtomicBoolean();
    private volatile boolean storeAway;
    private volatile long nextProbeAt; // ticker time; set whenever the store is found away
    private final Map<UUID, Instant> lastUse = new ConcurrentHashMap<>();
    private Thread lastUseWriter;

    /**
     * How key lookups are cached.
     *
     * @param recheckAfter how old an answer may be before it is re-checked; twice it bounds revocation across instances
     * @param maxStaleness how old an answer may be while the store cannot be reached; then the key is refused (503)
     * @param lookupWait longest a request waits for a lookup; a store slower than this is taken as away
     * @param probeEvery while the store is away, how often one lookup checks whether it is back
     * @param capacity most found keys remembered at once
     * @param unknownCapacity most unknown digests remembered at once, apart from found keys
     * @param lookupsAtOnce most lookups of digests without a usable answer at once; beyond, refused as unavailable
     */
    public record Caching(Duration recheckAfter, Duration maxStaleness, Duration lookupWait, Duration probeEvery,
            int capacity, int unknownCapacity, int lookupsAtOnce) {

        public Caching {
            Objects.requireNonNull(recheckAfter, "recheckAfter");
            Objects.requireNonNull(maxStaleness, "maxStaleness");
            Objects.requireNonNull(lookupWait, "lookupWait");
            Objects.requireNonNull(probeEvery, "probeEvery");
            if (recheckAfter.isNegative() || maxStaleness.compareTo(recheckAfter.multipliedBy(2)) < 0) {
                throw new IllegalArgumentException("max staleness (" + maxStaleness + ") must be at least twice the re-check period ("
                        + recheckAfter + "), which must not be negative");
            }
            if (!lookupWait.isPositive() || probeEvery.isNegative() || capacity < 1 || unknownCapacity < 1 || lookupsAtOnce < 1) {
                throw new IllegalArgumentException("lookup wait, capacities and lookups at once must be positive");
            }
        }

        /** Until this age an answer is served while it is re-checked; beyond, a request waits for the re-check. */
        Duration servedWhileRechecking() {
            return recheckAfter.multipliedBy(2);
        }
    }

    /** What the store said of a digest, and when it was asked (ticker time); {@code key} is null for no such key. */
    private record Answer(ApiKey key, long checkedAt) {}

    /** A lookup under way, from {@code startedAt} (ticker time): always completed, with an answer or the failure. */
    private record Lookup(CompletableFuture<Answer> answer, long startedAt) {}

    /**
     * @param ticker monotonic time of the cache: the age of answers and lookups
     * @param lookupRunner runs store lookups, never on a request's thread (in production, a few platform threads)
     * @param lastUseEvery how often last-used times are written
     */
    public ApiKeys(ApiKeyStore store, InstantSource clock, Ticker ticker, Executor lookupRunner, SecureRandom random,
            Caching caching, Duration lastUseEvery) {
        this.store = Objects.requireNonNull(store, "store");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        this.lookupRunner = Objects.requireNonNull(lookupRunner, "lookupRunner");
        this.random = Objects.requireNonNull(random, "random");
        this.caching = Objects.requireNonNull(caching, "caching");
        this.lastUseEvery = lastUseEvery;
        if (!lastUseEvery.isPositive()) {
            throw new IllegalArgumentException("last-use period must be positive");
        }
        // entries beyond max staleness can answer nothing; the cache's own work runs on the caller, no other thread
        this.found = Caffeine.newBuilder().maximumSize(caching.capacity()).expireAfterWrite(caching.maxStaleness())
                .ticker(ticker).executor(Runnable::run).build();
        this.unknown = Caffeine.newBuilder().maximumSize(caching.unknownCapacity()).expireAfterWrite(caching.maxStaleness())
                .ticker(ticker).executor(Runnable::run).build();
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

    /**
     * Fills the cache with the most recently used keys, before the instance takes requests: a restarted instance under
     * load would otherwise look every key up at once on a cold JVM, and a lookup slower than {@code lookupWait} is taken
     * as a store away (503 for keys without an answer). The answers are as old as the query; once they need a re-check,
     * a slow store still finds them usable for max staleness.
     *
     * @return how many keys were loaded
     * @throws KeyStoreUnavailableException when the store cannot be read; the cache is left as it was
     */
    public int warmUp() {
        long revocationsBefore = revocations.get();
        long askedAt = ticker.read();
        List<ApiKeyStore.KeptKey> recent = store.mostRecentlyUsed(caching.capacity());
        if (revocations.get() != revocationsBefore) {
            return 0; // a key revoked meanwhile may be among them: lookups will tell
        }
        for (var kept : recent) {
            found.put(HexFormat.of().formatHex(kept.digest()), new Answer(kept.key(), askedAt));
        }
        return recent.size();
    }

    /** A new key for a user, for every model, without expiry; its secret is in the answer and nowhere else. */
    public IssuedKey issue(long userId, String name) {
        return issue(userId, name, KeyTerms.NONE);
    }

    /**
     * A new key for a user on these terms; its secret is in the answer and nowhere else.
     *
     * @throws IllegalArgumentException when the key would expire at once (its expiry is not after now)
     */
    public IssuedKey issue(long userId, String name, KeyTerms terms) {
        // PostgreSQL keeps microseconds: the creation answer shows the time the listing will show
        Instant created = clock.instant().truncatedTo(ChronoUnit.MICROS);
        if (terms.expiredAt(clock.instant())) {
            throw new IllegalArgumentException("expires_at must be in the future, was " + terms.expiresAt());
        }
        String secret = Secrets.newSecret(random);
        var key = new ApiKey(UUID.randomUUID(), Secrets.displayPrefix(secret), userId, name, created, null, null, terms);
        store.add(key, Secrets.sha256(secret));
        return new IssuedKey(key, secret);
    }

    public List<ApiKey> ofUser(long userId) {
        return store.ofUser(userId);
    }

    /**
     * Revokes a key: refused here at once, on every other instance that reaches the store within twice the re-check
     * period. The key as revoked; empty when unknown.
     */
    public Optional<ApiKey> revoke(UUID id) {
        Optional<ApiKey> known = store.revoke(id, clock.instant());
        revocations.incrementAndGet(); // a lookup under way may have read the key before: its answer is not kept
        found.asMap().values().removeIf(answer -> answer.key().id().equals(id));
        return known;
    }

    /**
     * The user a presented key belongs to; empty for anything that is not a valid key: unknown, revoked or expired. An
     * expiry is checked against the clock at every call, so a cached key stops working the moment it expires.
     *
     * @throws KeyStoreUnavailableException when the key cannot be told: the store is away and the key has no answer
     *     younger than max staleness, or too many keys are being looked up at once
     */
    public Optional<Caller.User> identify(String presented) {
        if (!Secrets.wellFormed(presented)) {
            return Optional.empty();
        }
        byte[] digest = Secrets.sha256(presented);
        ApiKey key = answer(HexFormat.of().formatHex(digest), digest).key();
        Instant now = clock.instant();
        if (key == null || key.revoked() || key.terms().expiredAt(now)) {
            return Optional.empty();
        }
        lastUse.put(key.id(), now);
        return Optional.of(new Caller.User(key.userId(), key.id(), key.terms().models(), key.terms().limits(),
                key.terms().serviceTier()));
    }

    private Answer answer(String digestHex, byte[] digest) {
        long now = ticker.read();
        Answer cached = found.getIfPresent(digestHex);
        if (cached == null) {
            cached = unknown.getIfPresent(digestHex);
        }
        long age = cached == null ? Long.MAX_VALUE : now - cached.checkedAt();
        if (age < caching.recheckAfter().toNanos()) {
            return cached;
        }
        boolean usable = age < caching.maxStaleness().toNanos();
        if (storeAway) {
            probe(digestHex, digest, now);
            if (usable) {
                return cached;
            }
            throw new KeyStoreUnavailableException(cached == null
                    ? "the key store is unreachable"
                    : "the key store has been unreachable for longer than the key max staleness", null);
        }
        Lookup lookup = lookUp(digestHex, digest, now, !usable);
        CompletableFuture<Answer> answer = lookup.answer();
        if (answer.isDone() && !answer.isCompletedExceptionally()) {
            return answer.join();
        }
        if (age < caching.servedWhileRechecking().toNanos()) {
            return cached;
        }
        long waitNanos = caching.lookupWait().toNanos() - (now - lookup.startedAt());
        try {
            return answer.get(Math.max(0, waitNanos), TimeUnit.NANOSECONDS);
        } catch (TimeoutException slow) {
            markAway(ticker.read());
            if (usable) {
                return cached;
            }
            throw new KeyStoreUnavailableException("the key store did not answer within " + caching.lookupWait().toMillis() + " ms", null);
        } catch (ExecutionException failed) {
            if (!(failed.getCause() instanceof KeyStoreUnavailableException away)) {
                throw new IllegalStateException("a key lookup failed", failed.getCause());
            }
            if (usable) {
                return cached;
            }
            throw new KeyStoreUnavailableException(away.getMessage(), away);
        } catch (InterruptedException shutDown) {
            Thread.currentThread().interrupt();
            throw new KeyStoreUnavailableException("interrupted while waiting for the key store", shutDown);
        }
    }

    /** The lookup of this digest under way, or a new one; one per digest at a time, shared by all who ask. */
    private Lookup lookUp(String digestHex, byte[] digest, long now, boolean withoutAnswer) {
        Lookup running = lookups.get(digestHex);
        if (running != null) {
            return running;
        }
        var created = new AtomicBoolean();
        Lookup lookup = lookups.computeIfAbsent(digestHex, first -> {
            if (withoutAnswer && lookupsWithoutAnswer.incrementAndGet() > caching.lookupsAtOnce()) {
                lookupsWithoutAnswer.decrementAndGet();
                return null;
            }
            created.set(true);
            return new Lookup(new CompletableFuture<>(), now);
        });
        if (lookup == null) {
            throw new KeyStoreUnavailableException("too many unknown keys are being looked up at once", null);
        }
        if (!created.get()) {
            return lookup;
        }
        try {
            lookupRunner.execute(() -> run(digestHex, digest, lookup, withoutAnswer));
        } catch (RejectedExecutionException shuttingDown) {
            finish(digestHex, lookup, withoutAnswer);
            lookup.answer().completeExceptionally(new KeyStoreUnavailableException("key lookups have stopped", shuttingDown));
        }
        return lookup;
    }

    private void run(String digestHex, byte[] digest, Lookup lookup, boolean withoutAnswer) {
        long revocationsBefore = revocations.get();
        try {
            var answer = new Answer(store.findByDigest(digest).orElse(null), lookup.startedAt());
            storeAway = false;
            if (revocations.get() == revocationsBefore) {
                remember(digestHex, answer);
            }
            lookup.answer().complete(answer);
        } catch (KeyStoreUnavailableException away) {
            markAway(ticker.read());
            lookup.answer().completeExceptionally(away);
        } catch (RuntimeException broken) {
            lookup.answer().completeExceptionally(broken);
        } finally {
            finish(digestHex, lookup, withoutAnswer);
            lookup.answer().completeExceptionally(new IllegalStateException("a key lookup ended without an answer"));
        }
    }

    private void finish(String digestHex, Lookup lookup, boolean withoutAnswer) {
        lookups.remove(digestHex, lookup);
        if (withoutAnswer) {
            lookupsWithoutAnswer.decrementAndGet();
        }
    }

    private void remember(String digestHex, Answer answer) {
        if (answer.key() != null) {
            found.put(digestHex, answer);
            unknown.invalidate(digestHex);
        } else {
            unknown.put(digestHex, answer);
            found.invalidate(digestHex);
        }
    }

    private void markAway(long now) {
        if (!storeAway) {
            nextProbeAt = now + caching.probeEvery().toNanos();
            storeAway = true;
        }
    }

    /** While the store is away: this key's lookup tells whether it is back, if no other did within the probe period. */
    private void probe(String digestHex, byte[] digest, long now) {
        if (now - nextProbeAt < 0 || !probing.compareAndSet(false, true)) {
            return;
        }
        lookUp(digestHex, digest, now, false).answer().whenComplete((answer, failure) -> {
            nextProbeAt = ticker.read() + caching.probeEvery().toNanos();
            probing.set(false);
        });
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
