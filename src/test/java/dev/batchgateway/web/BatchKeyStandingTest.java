package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;

import com.github.benmanes.caffeine.cache.Ticker;
import dev.batchgateway.batch.BatchKeys.Standing;
import dev.batchgateway.completion.Payer;
import dev.batchgateway.identity.AdminTokens;
import dev.batchgateway.identity.ApiKey;
import dev.batchgateway.identity.ApiKeyStore;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.KeyLimits;
import dev.batchgateway.identity.KeyTerms;
import dev.batchgateway.identity.ModelNotAllowedException;
import dev.batchgateway.identity.NotAuthenticatedException;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;

/** A batch's lines run as requests of the key it was created with: its limits, its models, only while it is valid. */
class BatchKeyStandingTest {

    private static final Instant NOW = Instant.parse("2026-12-05T12:00:00Z");
    private static final long USER = 7;

    private final Map<UUID, ApiKey> stored = new ConcurrentHashMap<>();
    private final ApiKeys keys = new ApiKeys(new KeysInMemory(), Clock.fixed(NOW, ZoneOffset.UTC), Ticker.systemTicker(),
            Runnable::run, new SecureRandom(), new ApiKeys.Caching(Duration.ofSeconds(2), Duration.ofSeconds(30),
                    Duration.ofSeconds(1), Duration.ofSeconds(1), 100, 100, 8), Duration.ofSeconds(10));
    private final Callers callers = new Callers(keys, AdminTokens.none(), true);

    private BatchKeyStanding standingAt(Instant now) {
        return new BatchKeyStanding(keys, callers, Clock.fixed(now, ZoneOffset.UTC));
    }

    @Test
    void aLineOfAKeyWithLimitsRunsUnderThemBesideItsUsers() {
        UUID key = keys.issue(USER, "nightly", new KeyTerms(null, List.of(), new KeyLimits(1_000L, null, 3L))).key().id();

        Standing standing = standingAt(NOW).standing(USER, key, "simulated");

        assertThat(standing).isEqualTo(new Standing.Runs(new Payer.LimitedKey(USER, key, 1_000L, null, 3L)));
    }

    @Test
    void aLineOfAKeyWithoutLimitsOrOfABatchWithoutAKeyRunsAsItsUsers() {
        UUID key = keys.issue(USER, "plain").key().id();

        assertThat(standingAt(NOW).standing(USER, key, "simulated")).isEqualTo(new Standing.Runs(new Payer.User(USER)));
        assertThat(standingAt(NOW).standing(USER, null, "simulated")).isEqualTo(new Standing.Runs(new Payer.User(USER)));
    }

    @Test
    void aModelTheKeyMayNotUseIsRefusedAsTheEndpointRefusesIt() {
        UUID key = keys.issue(USER, "one model", new KeyTerms(null, List.of("other"), KeyLimits.NONE)).key().id();

        Standing standing = standingAt(NOW).standing(USER, key, "simulated");

        assertThat(standing).isInstanceOfSatisfying(Standing.Refused.class,
                refused -> assertThat(refused.why()).isInstanceOf(ModelNotAllowedException.class));
        assertThat(Failure.of(((Standing.Refused) standing).why()).status().value()).isEqualTo(403);
        assertThat(standingAt(NOW).standing(USER, key, "other")).isInstanceOf(Standing.Runs.class);
    }

    @Test
    void aRevokedOrExpiredKeysLinesAreRefusedAsUnauthenticated() {
        UUID revoked = keys.issue(USER, "revoked").key().id();
        keys.revoke(revoked);
        UUID expiring = keys.issue(USER, "expiring", new KeyTerms(NOW.plusSeconds(60), List.of(), KeyLimits.NONE)).key().id();

        assertThat(standingAt(NOW).standing(USER, revoked, "simulated")).isInstanceOfSatisfying(Standing.Refused.class,
                refused -> assertThat(refused.why()).isInstanceOf(NotAuthenticatedException.class));
        assertThat(standingAt(NOW).standing(USER, expiring, "simulated")).isInstanceOf(Standing.Runs.class);
        Standing expired = standingAt(NOW.plusSeconds(60)).standing(USER, expiring, "simulated");
        assertThat(expired).isInstanceOfSatisfying(Standing.Refused.class,
                refused -> assertThat(Failure.of(refused.why()).status().value()).isEqualTo(401));
        assertThat(standingAt(NOW).standing(USER, UUID.randomUUID(), "simulated")).as("a key that is gone")
                .isInstanceOf(Standing.Refused.class);
    }

    /** The keys issued here, as the store keeps them. */
    private final class KeysInMemory implements ApiKeyStore {
        @Override
        public void add(ApiKey key, byte[] digest) {
            stored.put(key.id(), key);
        }

        @Override
        public Optional<ApiKey> findByDigest(byte[] digest) {
            return Optional.empty();
        }

        @Override
        public List<KeptKey> mostRecentlyUsed(int most) {
            return List.of(); // this store has no digests: its keys are looked at only by id
        }

        @Override
        public List<ApiKey> ofUser(long userId) {
            return stored.values().stream().filter(key -> key.userId() == userId).toList();
        }

        @Override
        public Optional<ApiKey> revoke(UUID id, Instant at) {
            return Optional.ofNullable(stored.computeIfPresent(id, (known, key) -> new ApiKey(key.id(), key.prefix(),
                    key.userId(), key.name(), key.createdAt(), at, key.lastUsedAt(), key.terms())));
        }

        @Override
        public void markUsed(Map<UUID, Instant> lastUse) {}
    }
}
