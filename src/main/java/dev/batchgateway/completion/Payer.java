package dev.batchgateway.completion;

import java.util.Objects;
import java.util.UUID;

/**
 * Who a call is billed to and limited by: its user, and beside the user's limits those of the key it was made with,
 * when that key has limits of its own. The service tier each request runs in is the request's own
 * ({@link CompletionRequest#serviceTier()}).
 */
public sealed interface Payer {

    /** The user billed for the call. */
    long user();

    /** A call under its user's limits only (no key, or a key without limits of its own). */
    record User(long user) implements Payer {
        public User {
            requireUser(user);
        }
    }

    /**
     * A call made with a key that has limits of its own, enforced beside its user's: tokens per UTC day and month,
     * requests per UTC minute, each null for none.
     */
    record LimitedKey(long user, UUID keyId, Long tokensPerDay, Long tokensPerMonth, Long requestsPerMinute)
            implements Payer {
        public LimitedKey {
            requireUser(user);
            Objects.requireNonNull(keyId, "keyId");
            for (Long limit : new Long[] {tokensPerDay, tokensPerMonth, requestsPerMinute}) {
                if (limit != null && limit < 0) {
                    throw new IllegalArgumentException("a key's limits must not be negative, was " + limit);
                }
            }
        }
    }

    private static void requireUser(long user) {
        if (user < 1) {
            throw new IllegalArgumentException("user id must be at least 1, was " + user);
        }
    }
}
