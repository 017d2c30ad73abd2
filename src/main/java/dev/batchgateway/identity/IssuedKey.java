package dev.batchgateway.identity;

import java.util.Objects;

/** A key just created: the only moment its secret exists outside the caller's hands. */
public record IssuedKey(ApiKey key, String secret) {

    public IssuedKey {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(secret, "secret");
    }

    /** Never shows the secret: records print every component, and values end up in logs. */
    @Override
    public String toString() {
        return "IssuedKey[key=" + key + ", secret=(secret)]";
    }
}
