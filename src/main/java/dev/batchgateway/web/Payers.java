package dev.batchgateway.web;

import dev.batchgateway.completion.Payer;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.KeyLimits;

/** Who pays for a call, from who is calling: the domain never learns about keys but through this. */
final class Payers {

    private Payers() {}

    /** The payer of a call billed to {@code user}, made by {@code who}: with its key's own limits, if it has any. */
    static Payer of(Caller who, long user) {
        if (who instanceof Caller.User key && !key.limits().none()) {
            KeyLimits limits = key.limits();
            return new Payer.LimitedKey(user, key.keyId(), limits.tokensPerDay(), limits.tokensPerMonth(), limits.requestsPerMinute());
        }
        return new Payer.User(user);
    }
}
