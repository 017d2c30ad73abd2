package dev.batchgateway.identity;

import java.util.UUID;

/** Who is calling, as {@link Callers#identify} tells from the request's credentials. */
public sealed interface Caller {

    /** A user's API key: whatever it does is billed to, and limited to, {@code userId}. */
    record User(long userId, UUID keyId) implements Caller {}

    /** The operator, by the admin token: manages keys and may read any user's usage. */
    record Operator() implements Caller {}

    /** No valid credentials (none, malformed, unknown or revoked): refused wherever someone must be known. */
    record Anonymous() implements Caller {}

    /** {@code GATEWAY_AUTH=none}: a trusted proxy in front vouches for the caller, who names its user itself. */
    record Trusted() implements Caller {}
}
