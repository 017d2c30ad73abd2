package dev.batchgateway.identity;

import java.time.Instant;
import java.util.Objects;
import java.util.UUID;

/**
 * What the gateway keeps of an API key: never the secret, only its display prefix (e.g. {@code bg_x7Kq2Wm}) and, in
 * the store, its SHA-256 digest.
 *
 * @param revokedAt null while the key is valid
 * @param lastUsedAt null until first used; updated in batches, so it may lag by a few seconds
 * @param terms until when the key works, which models it may use, its own limits
 */
public record ApiKey(UUID id, String prefix, long userId, String name, Instant createdAt, Instant revokedAt,
        Instant lastUsedAt, KeyTerms terms) {

    public ApiKey {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(prefix, "prefix");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(createdAt, "createdAt");
        Objects.requireNonNull(terms, "terms");
        if (userId < 1) {
            throw new IllegalArgumentException("userId must be at least 1, was " + userId);
        }
    }

    public boolean revoked() {
        return revokedAt != null;
    }
}
