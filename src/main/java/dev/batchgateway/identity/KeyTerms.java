package dev.batchgateway.identity;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Objects;

/**
 * What a key was issued for, beside its user: until when it works, which models it may use, its own limits, and the
 * service tier its requests run in by default.
 *
 * @param expiresAt null for a key that does not expire; from that instant on the key is refused like an unknown one
 * @param models the models the key may use; empty for every model the gateway serves
 * @param limits the key's own limits, beside its user's
 * @param serviceTier the tier its requests run in when they ask for {@code auto} or name none, by its name in the API
 *     ({@code default} or {@code flex}; the admin API and the store check the name, identity only carries it)
 */
public record KeyTerms(Instant expiresAt, List<String> models, KeyLimits limits, String serviceTier) {

    /** The tier of a key issued without one. */
    public static final String DEFAULT_TIER = "default";

    /** A key for every model, without expiry or limits of its own, in the default tier. */
    public static final KeyTerms NONE = new KeyTerms(null, List.of(), KeyLimits.NONE);

    public KeyTerms {
        // PostgreSQL keeps microseconds: the answer to the creation shows what the listing will show
        expiresAt = expiresAt == null ? null : expiresAt.truncatedTo(ChronoUnit.MICROS);
        models = List.copyOf(Objects.requireNonNull(models, "models"));
        Objects.requireNonNull(limits, "limits");
        if (serviceTier == null || serviceTier.isBlank()) {
            throw new IllegalArgumentException("a key's service tier must be named, was " + serviceTier);
        }
    }

    /** Terms whose requests run in the default tier unless they ask for another. */
    public KeyTerms(Instant expiresAt, List<String> models, KeyLimits limits) {
        this(expiresAt, models, limits, DEFAULT_TIER);
    }

    /** Whether the key no longer works at {@code now}: its expiry has come. */
    public boolean expiredAt(Instant now) {
        return expiresAt != null && !now.isBefore(expiresAt);
    }

    /** Whether the key may use this model. */
    public boolean allows(String model) {
        return models.isEmpty() || models.contains(model);
    }
}
