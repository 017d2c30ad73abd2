package dev.batchgateway.identity;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * Where API keys are kept: by id, and by the SHA-256 digest of their secret, which is unique. The secret itself is never
 * given to the store. Every method may throw {@link KeyStoreUnavailableException} when the store cannot be reached.
 */
public interface ApiKeyStore {

    /** A key as the store keeps it: under the digest of its secret. */
    record KeptKey(byte[] digest, ApiKey key) {}

    /** Keeps a new key under the digest of its secret. */
    void add(ApiKey key, byte[] digest);

    /** The key whose secret has this digest, revoked or not. */
    Optional<ApiKey> findByDigest(byte[] digest);

    /** At most {@code most} keys that are neither revoked nor expired, the most recently used first. */
    List<KeptKey> mostRecentlyUsed(int most);

    /** A user's keys, oldest first. */
    List<ApiKey> ofUser(long userId);


    /**
     * Marks a key revoked at {@code at} (a key revoked before keeps its first revocation time); the key as revoked,
     * empty when unknown.
     */
    Optional<ApiKey> revoke(UUID id, Instant at);

    /** Records when keys were last used; a later time never goes back to an earlier one. */
    void markUsed(Map<UUID, Instant> lastUse);
}
