package dev.batchgateway.identity;

import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.regex.Pattern;

/**
 * Tells who is calling from the {@code Authorization} header, and what each caller may do: the only place that knows
 * the rules, so every endpoint applies the same ones.
 *
 * <ul>
 *   <li>{@code POST /complete}: a user's key; the body may name the key's own user, no other; the model must be one
 *       the key may use (the same on {@code /v1}).
 *   <li>{@code GET /usage/{user}}: a user's key for its own user, or the admin token for any.
 *   <li>{@code /admin/keys}, {@code /admin/users/{user}/limits}: the admin token only; without one configured the
 *       admin API is disabled.
 * </ul>
 * With keys off ({@code GATEWAY_AUTH=none}) everyone without the admin token is {@link Caller.Trusted}.
 */
public final class Callers {

    /**
     * {@code Bearer}, case-insensitive, then the credentials: the rest of the value, at most 512 characters. Not only
     * RFC 6750's token characters: an admin token may hold any printable ASCII, spaces and {@code !} included (a key's
     * shape is checked by {@link ApiKeys}).
     */
    private static final Pattern BEARER = Pattern.compile("(?i:bearer) +(\\S.{0,511}?) *");

    private final ApiKeys keys;
    private final AdminTokens adminTokens;
    private final boolean keysRequired;

    /**
     * @param adminTokens none configured: the admin API is then disabled
     * @param keysRequired false for {@code GATEWAY_AUTH=none}
     */
    public Callers(ApiKeys keys, AdminTokens adminTokens, boolean keysRequired) {
        this.keys = keys;
        this.adminTokens = adminTokens;
        this.keysRequired = keysRequired;
    }

    /** @param authorization the header's value, null when absent */
    public Caller identify(String authorization) {
        String token = bearerToken(authorization);
        Optional<String> operator = adminTokens.idOf(token);
        if (operator.isPresent()) {
            return new Caller.Operator(operator.get());
        }
        if (!keysRequired) {
            return new Caller.Trusted();
        }
        if (token == null) {
            return new Caller.Anonymous();
        }
        return keys.identify(token).<Caller>map(user -> user).orElseGet(Caller.Anonymous::new);
    }

    /**
     * The user a completion is billed to: the key's user (the body's {@code user_id} may only repeat it), or, with
     * keys off, the body's {@code user_id}; empty when that is missing.
     */
    public OptionalLong billedUser(Caller caller, OptionalLong named) {
        return switch (caller) {
            case Caller.User user -> {
                if (named.isPresent() && named.getAsLong() != user.userId()) {
                    throw new NotAllowedException("user_id " + named.getAsLong() + " is not the user of this API key");
                }
                yield OptionalLong.of(user.userId());
            }
            case Caller.Trusted trusted -> named;
            case Caller.Operator operator ->
                    throw new NotAllowedException("the admin token completes nothing: use a user's API key");
            case Caller.Anonymous anonymous -> throw new NotAuthenticatedException(NotAuthenticatedException.API_KEY_REQUIRED);
        };
    }

    /**
     * Whether the caller may use this model: a key issued for some models only may use those (403 naming the model).
     * Callers that may not complete at all are refused by {@link #billedUser}, not here.
     */
    public void mayUseModel(Caller caller, String model) {
        if (caller instanceof Caller.User user && !user.mayUse(model)) {
            throw new ModelNotAllowedException(model, user.models());
        }
    }

    /**
     * The name of the service tier the caller's requests run in when they ask for {@code auto} or name none: the key's
     * own ({@link KeyTerms#serviceTier}), else {@value KeyTerms#DEFAULT_TIER} (keys off too).
     */
    public String automaticTier(Caller caller) {
        return caller instanceof Caller.User user ? user.serviceTier() : KeyTerms.DEFAULT_TIER;
    }

    /** Of the models served, those the caller may use, in the same order. */
    public List<String> usableModels(Caller caller, List<String> served) {
        return caller instanceof Caller.User user ? served.stream().filter(user::mayUse).toList() : served;
    }

    /** Whether the caller may read this user's usage; throws when not. */
    public void mayReadUsage(Caller caller, long userId) {
        switch (caller) {
            case Caller.User user -> {
                if (user.userId() != userId) {
                    throw new NotAllowedException("an API key reads only its own user's usage");
                }
            }
            case Caller.Operator operator -> {}
            case Caller.Trusted trusted -> {}
            case Caller.Anonymous anonymous -> throw new NotAuthenticatedException(NotAuthenticatedException.API_KEY_REQUIRED);
        }
    }

    /** Refuses a caller without valid credentials where keys are required. */
    public void requireKnown(Caller caller) {
        if (caller instanceof Caller.Anonymous) {
            throw new NotAuthenticatedException(NotAuthenticatedException.API_KEY_REQUIRED);
        }
    }

    /** Whether the caller may export every user's usage (the admin token, as for keys); throws when not. */
    public Caller.Operator mayExportUsage(Caller caller) {
        return mayManageKeys(caller);
    }

    /** Whether the caller may manage keys; throws when not, else the operator, whose actions are audited. */
    public Caller.Operator mayManageKeys(Caller caller) {
        if (caller instanceof Caller.Operator operator) {
            return operator;
        }
        if (adminTokens.isEmpty()) {
            throw new NotAllowedException("the admin API is disabled: set GATEWAY_ADMIN_TOKEN to enable it");
        }
        throw new NotAuthenticatedException(NotAuthenticatedException.ADMIN_TOKEN_REQUIRED);
    }

    /** Whether the caller may read and set users' limits: the operator only, as for keys; throws when not. */
    public Caller.Operator mayManageLimits(Caller caller) {
        return mayManageKeys(caller);
    }

    /** Whether the caller may read the audit log of the operator's actions: the operator only; throws when not. */
    public Caller.Operator mayReadAudit(Caller caller) {
        return mayManageKeys(caller);
    }

    private static String bearerToken(String authorization) {
        if (authorization == null || authorization.length() > 600) {
            return null;
        }
        var matcher = BEARER.matcher(authorization);
        return matcher.matches() ? matcher.group(1) : null;
    }
}
