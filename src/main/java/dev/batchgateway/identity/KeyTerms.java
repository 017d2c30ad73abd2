package dev.batchgateway.identity;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Objects;

/**
 * What a key was issued for, beside its user: until when it works, which models it may use, and its own limits.
 *
 * @param expiresAt null for a key that does not expire; from that instant on the key is refused like an unknown one
 * @param models the models the key may use; empty for every model the gateway serves
 * @param limits the key's own limits, beside its user's
 */
public record KeyTerms(Instant expiresAt, List<String> models, KeyLimits limits) {

    /** A key for every model, without expiry or limits of its own. */
    public static final KeyTerms NONE = new KeyTerms(null, List.of(), KeyLimits.NONE);

    public KeyTerms {
        // PostgreSQL keeps microseconds: the answer to the creation shows what the listing will show
        expiresAt = expiresAt == null ? null : expiresAt.truncatedTo(ChronoUnit.MICROS);
        models = List.copyOf(Objects.requireNonNull(models, "models"));
        Objects.requireNonNull(limits, "limits");
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
