package dev.batchgateway.identity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Keys while the store is away, slow, or flooded: what is served from cache and for how long, what gets 503 and how
 * fast, and how many lookups the store sees. Cache time is a {@link ManualClock}; only the waits a request might make
 * on a store that does not answer are real, and those are measured.
 */
class ApiKeysOutageTest {

    private static final Duration RECHECK = Duration.ofSeconds(2);
    private static final Duration MAX_STALENESS = Duration.ofSeconds(30);
    private static final Duration PROBE_EVERY = Duration.ofSeconds(1);
    private static final Executor CALLERS_THREAD = Runnable::run;
    private final CountingExecutor background = new CountingExecutor();

    private final ManualClock clock = new ManualClock();
    private final MemoryKeyStore store = new MemoryKeyStore();

    @AfterEach
    void letHeldLookupsGo() {
        store.letLookupsGo();
    }

    private ApiKeys keys(ApiKeyStore on, Executor lookupRunner, Duration lookupWait) {
        return new ApiKeys(on, clock, clock, lookupRunner, new SecureRandom(),
                new ApiKeys.Caching(RECHECK, MAX_STALENESS, lookupWait, PROBE_EVERY, 10, 10, 8), Duration.ofSeconds(10));
    }

    @Test
    void aPartitionedInstanceRefusesARevokedKeyOnceItsLastCheckIsMaxStalenessOld() {
        // Given two instances on one store, both having checked a key, and the second then cut off from the store
        ApiKeys reachable = keys(store, CALLERS_THREAD, Duration.ofSeconds(1));
        var partition = new PartitionedKeyStore(store);
        ApiKeys partitioned = keys(partition, CALLERS_THREAD, Duration.ofSeconds(1));
        var issued = reachable.issue(7, "ci");
        assertThat(partitioned.identify(issued.secret())).isPresent();
        partition.cutOff = true;

        // When the key is revoked on the reachable instance
        assertThat(reachable.revoke(issued.key().id())).isPresent();

        // Then the partitioned one, which cannot learn it, keeps its last answer until that is max staleness old
        for (long second = 1; second < MAX_STALENESS.toSeconds(); second++) {
            clock.advance(Duration.ofSeconds(1));
            assertThat(partitioned.identify(issued.secret())).as("%d s after the last check", second).isPresent();
        }
        clock.advance(Duration.ofMillis(999));
        assertThat(partitioned.identify(issued.secret())).as("just under max staleness").isPresent();

        // And from then on refuses it as unavailable (503), not as unknown (401)
        clock.advance(Duration.ofMillis(1));
        assertThatThrownBy(() -> partitioned.identify(issued.secret()))
                .isInstanceOf(KeyStoreUnavailableException.class)
                .hasMessageNotContaining(issued.secret());
        clock.advance(Duration.ofMinutes(5));
        assertThatThrownBy(() -> partitioned.identify(issued.secret())).isInstanceOf(KeyStoreUnavailableException.class);

        // And once the partition heals, it learns of the revocation
        partition.cutOff = false;
        clock.advance(PROBE_EVERY);
        assertThat(eventually(() -> partitioned.identify(issued.secret()))).as("the revoked key after the partition").isEmpty();
    }

    @Test
    void aReachableInstanceRefusesAKeyRevokedElsewhereWithinTwiceTheRecheckPeriodThoughRechecksRunInTheBackground()
            throws Exception {
        // Given two instances on one store, the second re-checking in the background, both having checked a key
        ApiKeys revoking = keys(store, CALLERS_THREAD, Duration.ofSeconds(1));
        ApiKeys other = keys(store, background, Duration.ofSeconds(30));
        var issued = revoking.issue(7, "ci");
        assertThat(other.identify(issued.secret())).isPresent();

        // When the key is revoked on the first, and the second sees it again twice the re-check period later
        revoking.revoke(issued.key().id());
        clock.advance(RECHECK.multipliedBy(2));
        store.holdLookups();
        var answer = new CompletableFuture<Optional<Caller.User>>();
        var request = Thread.ofPlatform().start(() -> answer.complete(other.identify(issued.secret())));

        // Then the second waits for the re-check rather than serve what it knew, and refuses the key
        awaitAllWaiting(List.of(request));
        assertThat(answer).as("answered before the re-check").isNotDone();
        store.letLookupsGo();
        assertThat(answer.get(30, TimeUnit.SECONDS)).isEmpty();
    }

    @Test
    void aKnownKeyIsServedWithoutWaitingForAStoreThatDoesNotAnswer() throws Exception {
        // Given a key checked once, then a store that holds every lookup (a database behind a connection timeout)
        ApiKeys keys = keys(store, background, Duration.ofSeconds(2));
        var issued = keys.issue(7, "ci");
        assertThat(keys.identify(issued.secret())).isPresent();
        store.holdLookups();
        store.away = true;

        // When the key is used through the outage: while it is re-checked, once the re-check is overdue, and later
        List<Duration> waits = new ArrayList<>();
        for (Duration step : List.of(RECHECK, Duration.ofMillis(500), RECHECK, Duration.ofSeconds(5), Duration.ofSeconds(10))) {
            clock.advance(step);
            for (int i = 0; i < 10; i++) {
                waits.add(timed(() -> assertThat(keys.identify(issued.secret())).isPresent()));
            }
        }

        // Then no call waited for the store (a loaded machine may pause a thread, hence the 90th percentile)
        waits.sort(null);
        Duration p90 = waits.get(waits.size() * 9 / 10);
        Duration longest = waits.getLast();
        assertThat(p90.toMillis()).as("90th percentile: waited %s, expected < 50 ms", words(p90)).isLessThan(50);
        assertThat(longest.toMillis()).as("longest call: waited %s, expected < 1 s", words(longest)).isLessThan(1000);

        // And the store was asked once more after the first check, by the one background re-check, not once per call or
        // per probe period
        assertThat(background.started.get()).as("lookups: the first check and those while the store did not answer")
                .isEqualTo(1 + 1);
    }

    @Test
    void anUnknownKeyWhileTheStoreDoesNotAnswerIs503WithinOneSecondAndLaterOnesAtOnce() throws Exception {
        // Given a store that holds every lookup (a database behind a connection timeout)
        ApiKeys keys = keys(store, background, Duration.ofMillis(500));
        store.holdLookups();
        store.away = true;

        // When keys never seen are presented
        List<String> presented = List.of(madeUpKey(), madeUpKey(), madeUpKey(), madeUpKey());
        List<Duration> waits = new ArrayList<>();
        for (String key : presented) {
            waits.add(timed(() -> assertThatThrownBy(() -> keys.identify(key))
                    .isInstanceOf(KeyStoreUnavailableException.class)
                    .hasMessageNotContaining(key)));
        }

        // Then each is refused as unavailable within a second: the first after the lookup wait, the others at once
        for (Duration wait : waits) {
            assertThat(wait.toMillis()).as("waited %s, expected < 1 s", words(wait)).isLessThan(1000);
        }
        assertThat(waits.subList(1, waits.size())).allSatisfy(wait ->
                assertThat(wait.toMillis()).as("once the store is known away: waited %s, expected < 250 ms", words(wait)).isLessThan(250));

        // And the store saw one lookup, not one per key; one more a probe period later, to find out whether it is back
        assertThat(background.started.get()).isEqualTo(1);
        clock.advance(PROBE_EVERY);
        assertThatThrownBy(() -> keys.identify(madeUpKey())).isInstanceOf(KeyStoreUnavailableException.class);
        assertThatThrownBy(() -> keys.identify(madeUpKey())).isInstanceOf(KeyStoreUnavailableException.class);
        assertThat(background.started.get()).isEqualTo(2);

        // And once the store answers again, keys are told again
        store.away = false;
        store.letLookupsGo();
        clock.advance(PROBE_EVERY);
        String another = madeUpKey();
        assertThat(eventually(() -> keys.identify(another))).isEmpty();
    }

    @Test
    void aFloodOfMadeUpKeysLeavesTheValidKeysCached() {
        // Given five valid keys in use, on a cache of ten found keys and ten unknown ones
        ApiKeys keys = keys(store, CALLERS_THREAD, Duration.ofSeconds(1));
        List<IssuedKey> valid = new ArrayList<>();
        for (int user = 1; user <= 5; user++) {
            valid.add(keys.issue(user, "ci"));
        }
        valid.forEach(key -> assertThat(keys.identify(key.secret())).isPresent());

        // When a thousand distinct made-up keys arrive, each three times (more often than the valid keys were used, so a
        // frequency-aware cache shared by both would keep the made-up ones)
        for (int i = 0; i < 1000; i++) {
            String madeUp = madeUpKey();
            for (int time = 0; time < 3; time++) {
                assertThat(keys.identify(madeUp)).isEmpty();
            }
        }
        int afterFlood = store.lookups.get();

        // Then the valid keys are still answered from cache, without a lookup
        valid.forEach(key -> assertThat(keys.identify(key.secret())).isPresent());
        assertThat(store.lookups.get()).as("lookups of the valid keys after the flood").isEqualTo(afterFlood);
        assertThat(afterFlood).isEqualTo(5 + 1000);
    }

    @Test
    void lookupsOfKeysWithoutAnAnswerAreLimitedAndKnownKeysAreServedMeanwhile() throws Exception {
        // Given a known key, and a store that then holds lookups (a slow database), with at most eight lookups at once
        ApiKeys keys = keys(store, background, Duration.ofSeconds(30));
        var known = keys.issue(7, "ci");
        assertThat(keys.identify(known.secret())).isPresent();
        store.holdLookups();

        // When eight made-up keys are being looked up
        List<Thread> requests = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            String madeUp = madeUpKey();
            requests.add(Thread.ofPlatform().start(() -> keys.identify(madeUp)));
        }
        awaitAllWaiting(requests);

        // Then a ninth is refused as unavailable at once, without a lookup, and the known key is still served
        String ninth = madeUpKey();
        assertThat(timed(() -> assertThatThrownBy(() -> keys.identify(ninth))
                .isInstanceOf(KeyStoreUnavailableException.class)
                .hasMessageNotContaining(ninth)).toMillis()).as("the ninth key's refusal, in ms").isLessThan(1000);
        assertThat(keys.identify(known.secret())).isPresent();
        assertThat(background.started.get()).as("lookups: the known key's, then eight").isEqualTo(1 + 8);
        store.letLookupsGo();
        for (Thread request : requests) {
            assertThat(request.join(Duration.ofSeconds(30))).as("a held request ended").isTrue();
        }
    }

    @Test
    void concurrentRequestsForOneKeyShareOneLookup() throws Exception {
        // Given a store that holds lookups, and a key nobody has presented yet
        ApiKeys keys = keys(store, background, Duration.ofSeconds(30));
        var issued = keys.issue(7, "ci");
        store.holdLookups();

        // When sixteen requests present it at once, and are all waiting
        List<CompletableFuture<Optional<Caller.User>>> answers = new ArrayList<>();
        List<Thread> requests = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            var answer = new CompletableFuture<Optional<Caller.User>>();
            answers.add(answer);
            requests.add(Thread.ofPlatform().name("request-" + i).start(() -> {
                try {
                    answer.complete(keys.identify(issued.secret()));
                } catch (RuntimeException e) {
                    answer.completeExceptionally(e);
                }
            }));
        }
        awaitAllWaiting(requests);

        // Then the store was asked once, and everyone gets its answer
        assertThat(background.started.get()).as("lookups of one key by sixteen concurrent requests").isEqualTo(1);
        store.letLookupsGo();
        for (var answer : answers) {
            assertThat(answer.get(30, TimeUnit.SECONDS)).hasValue(new Caller.User(7, issued.key().id()));
        }
        assertThat(store.lookups.get()).isEqualTo(1);
    }

    /** Runs each lookup on a virtual thread of its own, counting them as they are handed over. */
    private static final class CountingExecutor implements Executor {

        final java.util.concurrent.atomic.AtomicInteger started = new java.util.concurrent.atomic.AtomicInteger();

        @Override
        public void execute(Runnable lookup) {
            started.incrementAndGet();
            Thread.ofVirtual().name("test-key-lookup").start(lookup);
        }
    }

    /** The shared store, as one instance sees it: {@link #cutOff} is a network partition between them. */
    private static final class PartitionedKeyStore implements ApiKeyStore {

        private final ApiKeyStore store;
        volatile boolean cutOff;

        PartitionedKeyStore(ApiKeyStore store) {
            this.store = store;
        }

        @Override
        public void add(ApiKey key, byte[] digest) {
            reachable();
            store.add(key, digest);
        }

        @Override
        public Optional<ApiKey> findByDigest(byte[] digest) {
            reachable();
            return store.findByDigest(digest);
        }

        @Override
        public List<KeptKey> mostRecentlyUsed(int most) {
            reachable();
            return store.mostRecentlyUsed(most);
        }

        @Override
        public List<ApiKey> ofUser(long userId) {
            reachable();
            return store.ofUser(userId);
        }

        @Override
        public Optional<ApiKey> revoke(UUID id, Instant at) {
            reachable();
            return store.revoke(id, at);
        }

        @Override
        public void markUsed(Map<UUID, Instant> lastUse) {
            reachable();
            store.markUsed(lastUse);
        }

        private void reachable() {
            if (cutOff) {
                throw new KeyStoreUnavailableException("cut off from the key store", null);
            }
        }
    }

    private static String madeUpKey() {
        byte[] bytes = new byte[32];
        new SecureRandom().nextBytes(bytes);
        return "bg_" + Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    /** How long the call took, on its own thread, giving up after ten seconds (a call that waits for the held store). */
    private static Duration timed(Runnable call) throws Exception {
        var done = new CompletableFuture<Duration>();
        Thread.ofVirtual().start(() -> {
            long start = System.nanoTime();
            try {
                call.run();
                done.complete(Duration.ofNanos(System.nanoTime() - start));
            } catch (Throwable failed) {
                done.completeExceptionally(failed);
            }
        });
        try {
            return done.get(10, TimeUnit.SECONDS);
        } catch (TimeoutException stuck) {
            return fail("a call still waited after 10 s, expected < 1 s");
        } catch (ExecutionException failed) {
            throw failed.getCause() instanceof Exception e ? e : new IllegalStateException(failed.getCause());
        }
    }

    /** The answer once the background lookups have caught up (within ten seconds), for calls refused meanwhile. */
    private static <T> T eventually(Supplier<T> call) {
        long start = System.nanoTime();
        while (true) {
            try {
                return call.get();
            } catch (KeyStoreUnavailableException stillAway) {
                Duration waited = Duration.ofNanos(System.nanoTime() - start);
                if (waited.toSeconds() >= 10) {
                    throw new AssertionError("still unavailable after " + words(waited) + ", expected within 10 s", stillAway);
                }
                Thread.onSpinWait();
            }
        }
    }

    /** Until every thread waits (or has ended): each is then inside the call, or done with it. */
    private static void awaitAllWaiting(List<Thread> threads) throws InterruptedException {
        var settled = java.util.Set.of(Thread.State.WAITING, Thread.State.TIMED_WAITING, Thread.State.TERMINATED);
        long start = System.nanoTime();
        while (!threads.stream().allMatch(t -> settled.contains(t.getState()))) {
            Duration waited = Duration.ofNanos(System.nanoTime() - start);
            assertThat(waited.toSeconds()).as("requests all waiting after %s, expected within 10 s", words(waited)).isLessThan(10);
            Thread.sleep(5); // polls a state; no thread's progress depends on it
        }
    }

    private static String words(Duration duration) {
        return duration.toMillis() < 1000 ? duration.toMillis() + " ms" : String.format("%.1f s", duration.toMillis() / 1000.0);
    }
}
