package dev.batchgateway.identity;

import java.util.List;
import java.util.Objects;
import java.util.UUID;

/** Who is calling, as {@link Callers#identify} tells from the request's credentials. */
public sealed interface Caller {

    /**
     * A user's API key: whatever it does is billed to, and limited to, {@code userId}.
     *
     * @param models the models the key may use; empty for every model served
     * @param limits the key's own limits, beside its user's
     * @param serviceTier the tier the key's requests run in when they ask for {@code auto} or name none
     *     ({@link KeyTerms#serviceTier})
     */
    record User(long userId, UUID keyId, List<String> models, KeyLimits limits, String serviceTier) implements Caller {

        public User {
            models = List.copyOf(Objects.requireNonNull(models, "models"));
            Objects.requireNonNull(limits, "limits");
            Objects.requireNonNull(serviceTier, "serviceTier");
        }

        /** A key for these models, with these limits, in the default tier. */
        public User(long userId, UUID keyId, List<String> models, KeyLimits limits) {
            this(userId, keyId, models, limits, KeyTerms.DEFAULT_TIER);
        }

        /** A key for these models, without limits of its own. */
        public User(long userId, UUID keyId, List<String> models) {
            this(userId, keyId, models, KeyLimits.NONE);
        }

        /** A key for every model. */
        public User(long userId, UUID keyId) {
            this(userId, keyId, List.of());
        }

        /** Whether the key may use this model. */
        public boolean mayUse(String model) {
            return models.isEmpty() || models.contains(model);
        }
    }

    /**
     * The operator, by an admin token.
     *
     * @param tokenId names the admin token used, for the audit log, without revealing it ({@link AdminTokens#idOf})
     */
    record Operator(String tokenId) implements Caller {

        public Operator {
            Objects.requireNonNull(tokenId, "tokenId");
        }
    }

    /** No valid credentials (none, malformed, unknown or revoked): refused wherever someone must be known. */
    record Anonymous() implements Caller {}

    /** {@code GATEWAY_AUTH=none}: a trusted proxy in front vouches for the caller, who names its user itself. */
    record Trusted() implements Caller {}
}
