package dev.batchgateway.identity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** API keys and the rules of who may call what, on an in-memory store and a clock that moves when told. */
class ApiKeysTest {

    private static final Duration CACHE = Duration.ofSeconds(2);
    private static final String ADMIN = "an-admin-token-of-at-least-32-characters";

    private final MemoryKeyStore store = new MemoryKeyStore();
    private final ManualClock clock = new ManualClock();
    private final ApiKeys keys = keysOn(store);

    private ApiKeys keysOn(MemoryKeyStore on) {
        // lookups run on the caller's thread: every answer here is as it would be once a background re-check is done
        return new ApiKeys(on, clock, clock, Runnable::run, new SecureRandom(),
                new ApiKeys.Caching(CACHE, Duration.ofSeconds(30), Duration.ofSeconds(1), Duration.ofSeconds(1), 100, 100, 8),
                Duration.ofSeconds(10));
    }

    @Test
    void aKeyIs256RandomBitsBehindBgAndOnlyItsDigestIsStored() throws Exception {
        // When two keys are issued
        var first = keys.issue(42, "ci");
        var second = keys.issue(42, "laptop");

        // Then each is bg_ and 43 base64url characters (256 bits), different, stored only as its SHA-256
        assertThat(first.secret()).matches("bg_[A-Za-z0-9_-]{43}").isNotEqualTo(second.secret());
        byte[] digest = MessageDigest.getInstance("SHA-256").digest(first.secret().getBytes(StandardCharsets.UTF_8));
        assertThat(store.byDigest).containsKey(HexFormat.of().formatHex(digest));
        assertThat(first.key().prefix()).isEqualTo(first.secret().substring(0, 11));
        assertThat(first.toString()).doesNotContain(first.secret());
        assertThat(keys.ofUser(42)).extracting(ApiKey::name).containsExactlyInAnyOrder("ci", "laptop");
    }

    @Test
    void aLookupIsCachedForItsPeriodThenAskedAgain() {
        // Given a key used once
        var issued = keys.issue(7, "ci");
        assertThat(keys.identify(issued.secret())).hasValue(new Caller.User(7, issued.key().id()));

        // When it is used again within the period, and after it
        keys.identify(issued.secret());
        int withinPeriod = store.lookups.get();
        clock.advance(CACHE);
        keys.identify(issued.secret());

        // Then the store was asked once per period
        assertThat(withinPeriod).isEqualTo(1);
        assertThat(store.lookups.get()).isEqualTo(2);
    }

    @Test
    void aKeyRevokedOnOneInstanceIsRefusedThereAtOnceAndOnAnotherWhenItsCachePeriodEnds() {
        // Given two instances on one store, both having seen the key
        ApiKeys other = keysOn(store);
        var issued = keys.issue(7, "ci");
        assertThat(keys.identify(issued.secret())).isPresent();
        assertThat(other.identify(issued.secret())).isPresent();

        // When one revokes it
        assertThat(keys.revoke(issued.key().id())).isPresent();

        // Then it refuses the key at once; the other until its period ends, then refuses it too
        assertThat(keys.identify(issued.secret())).isEmpty();
        assertThat(other.identify(issued.secret())).isPresent();
        clock.advance(CACHE);
        assertThat(other.identify(issued.secret())).isEmpty();
        assertThat(keys.ofUser(7)).singleElement().satisfies(key -> assertThat(key.revoked()).isTrue());
    }

    @Test
    void aCachedKeyStopsWorkingTheMomentItExpiresNotWhenItsAnswerIsNextChecked() {
        // Given a key that expires within the cache's period, used once: its answer is cached
        var issued = keys.issue(7, "ci", new KeyTerms(clock.instant().plusMillis(1500), List.of(), KeyLimits.NONE));
        assertThat(keys.identify(issued.secret())).isPresent();
        clock.advance(Duration.ofMillis(1499));
        assertThat(keys.identify(issued.secret())).as("a microsecond before its expiry").isPresent();

        // When its expiry comes, while the cached answer is still young enough to be served without a lookup
        clock.advance(Duration.ofMillis(1));

        // Then it is refused like any unknown key, from the cached answer, and its use is no longer recorded
        assertThat(keys.identify(issued.secret())).isEmpty();
        assertThat(store.lookups.get()).as("lookups: the refusal came from the cache").isEqualTo(1);
        keys.writeLastUse();
        assertThat(store.lastUseWrites).singleElement()
                .satisfies(write -> assertThat(write.get(issued.key().id())).isEqualTo(clock.instant().minusMillis(1)));
    }

    @Test
    void aKeyCannotBeIssuedAlreadyExpired() {
        for (var expiry : List.of(clock.instant(), clock.instant().minusSeconds(1))) {
            assertThatThrownBy(() -> keys.issue(7, "ci", new KeyTerms(expiry, List.of(), KeyLimits.NONE)))
                    .as("expiring at " + expiry + ", now " + clock.instant())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("expires_at must be in the future");
        }
        assertThat(store.byDigest).isEmpty();
    }

    @Test
    void aKeysServiceTierIsWhatAutoMeansForItsCallsAndDefaultForEveryoneElse() {
        // Given a key issued for the flex tier, a key without a tier, and keys off
        var callers = new Callers(keys, AdminTokens.none(), true);
        var flex = callers.identify("Bearer " + keys.issue(7, "pipeline",
                new KeyTerms(null, List.of(), KeyLimits.NONE, "flex")).secret());
        var plain = callers.identify("Bearer " + keys.issue(7, "ci").secret());

        // Then auto means flex for the first, default for the others
        assertThat(callers.automaticTier(flex)).isEqualTo("flex");
        assertThat(callers.automaticTier(plain)).isEqualTo("default");
        assertThat(new Callers(keys, AdminTokens.none(), false).automaticTier(new Caller.Trusted())).isEqualTo("default");
    }

    @Test
    void aKeyForSomeModelsMayUseOnlyThoseAndSeesOnlyThose() {
        // Given a key for one model of two, and a key for every model
        var callers = new Callers(keys, AdminTokens.none(), true);
        var scoped = callers.identify("Bearer " + keys.issue(7, "ci", new KeyTerms(null, List.of("code"), KeyLimits.NONE)).secret());
        var everything = callers.identify("Bearer " + keys.issue(7, "all").secret());

        // Then the scoped key may use its model and no other, which the refusal names, and sees only its own
        callers.mayUseModel(scoped, "code");
        assertThatThrownBy(() -> callers.mayUseModel(scoped, "chat"))
                .isInstanceOf(ModelNotAllowedException.class)
                .hasMessage("this API key may not use the model 'chat': it may use code");
        assertThat(callers.usableModels(scoped, List.of("chat", "code"))).containsExactly("code");
        callers.mayUseModel(everything, "chat");
        assertThat(callers.usableModels(everything, List.of("chat", "code"))).containsExactly("chat", "code");
    }

    @Test
    void revokingAnUnknownKeyIsFalse() {
        assertThat(keys.revoke(java.util.UUID.randomUUID())).isEmpty();
    }

    @Test
    void lastUseIsWrittenForAllKeysAtOnceNeverPerRequest() {
        // Given two keys used a hundred times
        var a = keys.issue(1, "a");
        var b = keys.issue(2, "b");
        for (int i = 0; i < 50; i++) {
            keys.identify(a.secret());
            keys.identify(b.secret());
        }
        assertThat(store.lastUseWrites).isEmpty();

        // When the last uses are written
        keys.writeLastUse();
        keys.writeLastUse();

        // Then once, for both keys, and nothing more while nobody called
        assertThat(store.lastUseWrites).singleElement()
                .satisfies(write -> assertThat(write).containsOnlyKeys(a.key().id(), b.key().id()));
    }

    @Test
    void lastUseIsKeptForTheNextWriteWhenTheStoreIsAway() {
        var a = keys.issue(1, "a");
        keys.identify(a.secret());
        store.away = true;
        keys.writeLastUse();
        store.away = false;
        keys.writeLastUse();

        assertThat(store.lastUseWrites).singleElement().satisfies(write -> assertThat(write).containsOnlyKeys(a.key().id()));
    }

    @Test
    void whileTheStoreIsAwayAKnownKeyIsStillServedAndAnUnknownOneFails() {
        // Given a key seen before the store went away
        var known = keys.issue(3, "ci");
        keys.identify(known.secret());
        store.away = true;
        clock.advance(CACHE);

        // Then it is still served; a key never seen cannot be told and fails as unavailable
        assertThat(keys.identify(known.secret())).isPresent();
        assertThatThrownBy(() -> keys.identify("bg_" + "Z".repeat(43))).isInstanceOf(KeyStoreUnavailableException.class);
    }

    @Test
    void aWarmedCacheAnswersKnownKeysWithoutAskingAndServesThemWhileTheStoreIsSlowOrAway() {
        // Given two keys issued by another instance, one of them revoked since, and a cache warmed from the store
        var used = keys.issue(3, "ci");
        var revoked = keys.issue(3, "old");
        keys.revoke(revoked.key().id());
        var restarted = keysOn(store);
        assertThat(restarted.warmUp()).as("keys loaded").isEqualTo(1);

        // Then the key in use is known without a lookup, the revoked one is looked up (and refused)
        assertThat(restarted.identify(used.secret())).isPresent();
        assertThat(store.lookups.get()).as("lookups after warming up").isZero();
        assertThat(restarted.identify(revoked.secret())).isEmpty();
        assertThat(store.lookups.get()).isEqualTo(1);

        // And once its answer needs a re-check, a store gone away does not turn the warmed key away (max staleness)
        store.away = true;
        clock.advance(CACHE.multipliedBy(3));
        assertThat(restarted.identify(used.secret())).isPresent();
    }

    @Test
    void aCacheThatCannotBeWarmedIsLeftAsItWasAndLooksKeysUpAsTheyCome() {
        var issued = keys.issue(3, "ci");
        store.away = true;
        var restarted = keysOn(store);

        assertThatThrownBy(restarted::warmUp).isInstanceOf(KeyStoreUnavailableException.class);
        store.away = false;
        assertThat(restarted.identify(issued.secret())).isPresent();
        assertThat(store.lookups.get()).isEqualTo(1);
    }

    @Test
    void whatCannotBeAKeyNeverReachesTheStore() {
        for (String token : new String[] {null, "", "bg_", "bg_short", "sk-" + "a".repeat(43), "bg_" + "a".repeat(42) + "!",
                "bg_" + "a".repeat(44), "bg_" + "ä".repeat(43)}) {
            assertThat(keys.identify(token)).as(String.valueOf(token)).isEmpty();
        }
        assertThat(store.lookups.get()).isZero();
    }

    @Test
    void unknownKeysAreRememberedTooSoAFloodOfMadeUpKeysDoesNotReachTheStoreTwice() {
        String madeUp = "bg_" + "Q".repeat(43);
        keys.identify(madeUp);
        keys.identify(madeUp);

        assertThat(store.lookups.get()).isEqualTo(1);
    }

    @Test
    void callersAreToldFromTheAuthorizationHeader() {
        var callers = new Callers(keys, new AdminTokens(List.of(ADMIN)), true);
        var issued = keys.issue(9, "ci");

        assertThat(callers.identify("Bearer " + issued.secret())).isEqualTo(new Caller.User(9, issued.key().id()));
        assertThat(callers.identify("bearer  " + issued.secret())).isInstanceOf(Caller.User.class);
        assertThat(callers.identify("Bearer " + ADMIN)).isEqualTo(new Caller.Operator(new AdminTokens(List.of(ADMIN)).idOf(ADMIN).orElseThrow()));
        for (String header : new String[] {null, "", issued.secret(), "Basic " + issued.secret(), "Bearer", "Bearer ",
                "Bearer " + issued.secret() + " x", "Bearer " + "a".repeat(600), "Bearer " + ADMIN + "x"}) {
            assertThat(callers.identify(header)).as(String.valueOf(header)).isEqualTo(new Caller.Anonymous());
        }
    }

    @Test
    void aKeyBillsAndReadsOnlyItsOwnUser() {
        var callers = new Callers(keys, AdminTokens.none(), true);
        var user = new Caller.User(9, java.util.UUID.randomUUID());

        assertThat(callers.billedUser(user, OptionalLong.empty())).hasValue(9);
        assertThat(callers.billedUser(user, OptionalLong.of(9))).hasValue(9);
        assertThatThrownBy(() -> callers.billedUser(user, OptionalLong.of(10))).isInstanceOf(NotAllowedException.class);
        assertThatThrownBy(() -> callers.billedUser(new Caller.Anonymous(), OptionalLong.of(9)))
                .isInstanceOf(NotAuthenticatedException.class)
                .hasMessage(NotAuthenticatedException.API_KEY_REQUIRED);
        assertThatThrownBy(() -> callers.billedUser(new Caller.Operator("0badc0de"), OptionalLong.of(9))).isInstanceOf(NotAllowedException.class);
        callers.mayReadUsage(user, 9);
        callers.mayReadUsage(new Caller.Operator("0badc0de"), 10);
        assertThatThrownBy(() -> callers.mayReadUsage(user, 10)).isInstanceOf(NotAllowedException.class);
    }

    @Test
    void withKeysOffTheBodysUserIsTrustedAndKeysAreNotEvenLookedAt() {
        var callers = new Callers(keys, AdminTokens.none(), false);
        var issued = keys.issue(9, "ci");

        assertThat(callers.identify("Bearer " + issued.secret())).isEqualTo(new Caller.Trusted());
        assertThat(callers.identify(null)).isEqualTo(new Caller.Trusted());
        assertThat(callers.billedUser(new Caller.Trusted(), OptionalLong.of(5))).hasValue(5);
        assertThat(callers.billedUser(new Caller.Trusted(), OptionalLong.empty())).isEmpty();
        assertThat(store.lookups.get()).isZero();
    }

    @Test
    void theAdminApiIsDisabledWithoutATokenAndNeedsTheTokenWithOne() {
        var disabled = new Callers(keys, AdminTokens.none(), true);
        var enabled = new Callers(keys, new AdminTokens(List.of(ADMIN)), true);

        assertThatThrownBy(() -> disabled.mayManageKeys(new Caller.Anonymous()))
                .isInstanceOf(NotAllowedException.class).hasMessageContaining("disabled");
        assertThatThrownBy(() -> enabled.mayManageKeys(new Caller.User(1, java.util.UUID.randomUUID())))
                .isInstanceOf(NotAuthenticatedException.class);
        enabled.mayManageKeys(new Caller.Operator("0badc0de"));
        assertThat(new AdminTokens(List.of(ADMIN)).toString()).doesNotContain(ADMIN);
    }
}
