package dev.batchgateway.web;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.batchgateway.batch.BatchKeys;
import dev.batchgateway.completion.Payer;
import dev.batchgateway.identity.ApiKey;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.NotAuthenticatedException;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;
import java.util.UUID;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.stereotype.Component;

/**
 * A batch's lines as requests of the key the batch was created with, by the same rules as that key's requests over
 * HTTP ({@link Callers#mayUseModel}, {@link Payers#of}): its own limits beside its user's, its models only, and a 401 once
 * it is revoked or expired. A key is read again at most every {@link #RECHECK_EVERY}, so a revocation reaches a running
 * batch within that.
 */
@Component
class BatchKeyStanding implements BatchKeys {

    static final Duration RECHECK_EVERY = Duration.ofSeconds(5);

    private final ApiKeys keys;
    private final Callers callers;
    private final Clock clock;
    private final Cache<UUID, Optional<ApiKey>> recent = Caffeine.newBuilder().maximumSize(10_000)
            .expireAfterWrite(RECHECK_EVERY).build();

    @Autowired
    BatchKeyStanding(ApiKeys keys, Callers callers) {
        this(keys, callers, Clock.systemUTC());
    }

    BatchKeyStanding(ApiKeys keys, Callers callers, Clock clock) {
        this.keys = keys;
        this.callers = callers;
        this.clock = clock;
    }

    @Override
    public Standing standing(long user, UUID keyId, String model) {
        if (keyId == null) {
            return new Standing.Runs(new Payer.User(user));
        }
        ApiKey key = recent.get(keyId, id -> keys.ofUser(user).stream().filter(known -> known.id().equals(id)).findFirst())
                .orElse(null);
        if (key == null || key.revoked() || key.terms().expiredAt(clock.instant())) {
            return new Standing.Refused(new NotAuthenticatedException(
                    "the API key this batch was created with has been revoked or has expired"));
        }
        var who = new Caller.User(key.userId(), key.id(), key.terms().models(), key.terms().limits(), key.terms().serviceTier());
        try {
            callers.mayUseModel(who, model);
        } catch (RuntimeException refused) {
            return new Standing.Refused(refused);
        }
        return new Standing.Runs(Payers.of(who, user));
    }
}
