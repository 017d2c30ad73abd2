package dev.batchgateway.identity;

import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Objects;

/** The operator's secret. Compared in constant time: the digests of both sides, so neither content nor length leaks. */
public final class AdminToken {

    private final byte[] digest;

    public AdminToken(String token) {
        this.digest = Secrets.sha256(Objects.requireNonNull(token, "token"));
    }

    /**
     * Names this token in the audit log and its log lines without revealing it: the first 8 hex digits of its SHA-256,
     * 32 bits that say nothing usable about a token of at least 32 characters. The one place that names admin tokens.
     */
    public String id() {
        return HexFormat.of().formatHex(digest, 0, 4);
    }

    public boolean matches(String presented) {
        return presented != null && MessageDigest.isEqual(digest, Secrets.sha256(presented));
    }

    @Override
    public String toString() {
        return "AdminToken[(secret)]";
    }
}
