package dev.batchgateway.keys;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.identity.ApiKey;
import dev.batchgateway.identity.KeyLimits;
import dev.batchgateway.identity.KeyTerms;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.jdbc.test.autoconfigure.AutoConfigureTestDatabase;
import org.springframework.boot.jdbc.test.autoconfigure.JdbcTest;
import org.springframework.context.annotation.Import;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Propagation;
import org.springframework.transaction.annotation.Transactional;

/** Keys and their terms in {@code api_key} on a real PostgreSQL: what is kept is what is read back. */
@JdbcTest
@AutoConfigureTestDatabase(replace = AutoConfigureTestDatabase.Replace.NONE)
@Transactional(propagation = Propagation.NOT_SUPPORTED)
@Import(JdbcApiKeyStore.class)
class JdbcApiKeyStoreTest {

    @DynamicPropertySource
    static void database(DynamicPropertyRegistry registry) {
        TestDatabase.register(registry);
    }

    @Autowired
    JdbcApiKeyStore store;

    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
    private final Instant now = Instant.now().truncatedTo(ChronoUnit.MICROS);

    @Test
    void aKeysTermsAreReadBackAsKeptLimitsIncluded() {
        // Given a key with every term (limits and the flex tier too), and one with none
        var terms = new KeyTerms(now.plus(30, ChronoUnit.DAYS), List.of("chat", "code"), new KeyLimits(1000L, null, 60L), "flex");
        var scoped = key(terms);
        var plain = key(KeyTerms.NONE);
        store.add(scoped, digest());
        store.add(plain, digest());

        // Then both are read back as they were kept
        assertThat(store.ofUser(user)).extracting(ApiKey::id, ApiKey::terms)
                .containsExactlyInAnyOrder(
                        org.assertj.core.groups.Tuple.tuple(scoped.id(), terms),
                        org.assertj.core.groups.Tuple.tuple(plain.id(), KeyTerms.NONE));
    }

    @Test
    void aRevokedKeyIsAnsweredAsRevokedWithItsTermsAndAnUnknownOneNotAtAll() {
        var terms = new KeyTerms(null, List.of("chat"), KeyLimits.NONE);
        var key = key(terms);
        store.add(key, digest());

        var revoked = store.revoke(key.id(), now.plusSeconds(1));

        assertThat(revoked).hasValueSatisfying(answer -> {
            assertThat(answer.revokedAt()).isEqualTo(now.plusSeconds(1));
            assertThat(answer.terms()).isEqualTo(terms);
            assertThat(answer.userId()).isEqualTo(user);
        });
        assertThat(store.revoke(UUID.randomUUID(), now)).isEmpty();
    }

    @Test
    void theMostRecentlyUsedKeysAreThoseNeitherRevokedNorExpiredWithTheDigestTheyAreKeptUnder() {
        // Given keys last used centuries ahead of any other test's (the table is shared): the latest one revoked,
        // the next one expired, then the one to warm a cache with
        var usable = key(KeyTerms.NONE);
        var revoked = key(KeyTerms.NONE);
        var expired = key(new KeyTerms(now.minusSeconds(60), List.of(), KeyLimits.NONE));
        byte[] usableDigest = digest();
        store.add(usable, usableDigest);
        store.add(revoked, digest());
        store.add(expired, digest());
        store.revoke(revoked.id(), now);
        Instant future = Instant.parse("2900-01-01T00:00:00Z").plusSeconds(ThreadLocalRandom.current().nextInt(1_000_000));
        store.markUsed(java.util.Map.of(usable.id(), future, expired.id(), future.plusSeconds(1), revoked.id(), future.plusSeconds(2)));

        // Then the first most recently used is the usable key, under its digest
        var first = store.mostRecentlyUsed(1);
        assertThat(first).singleElement().satisfies(kept -> {
            assertThat(kept.key().id()).isEqualTo(usable.id());
            assertThat(kept.digest()).isEqualTo(usableDigest);
        });
        assertThat(store.mostRecentlyUsed(1000)).extracting(kept -> kept.key().id()).doesNotContain(revoked.id(), expired.id());
    }

    private ApiKey key(KeyTerms terms) {
        return new ApiKey(UUID.randomUUID(), "bg_test0000", user, "test", now, null, null, terms);
    }

    private static byte[] digest() {
        byte[] digest = new byte[32];
        ThreadLocalRandom.current().nextBytes(digest);
        return digest;
    }
}
