package dev.batchgateway.identity;

import java.security.MessageDigest;
import java.util.Objects;

/** The operator's secret. Compared in constant time: the digests of both sides, so neither content nor length leaks. */
public final class AdminToken {

    private final byte[] digest;

    public AdminToken(String token) {
        this.digest = Secrets.sha256(Objects.requireNonNull(token, "token"));
    }

    public boolean matches(String presented) {
        return presented != null && MessageDigest.isEqual(digest, Secrets.sha256(presented));
    }

    @Override
    public String toString() {
        return "AdminToken[(secret)]";
    }
}
