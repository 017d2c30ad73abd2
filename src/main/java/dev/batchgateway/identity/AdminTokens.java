package dev.batchgateway.identity;

import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The operator's secrets for the admin API: usually one, several while one is being rotated out. A presented token is
 * compared with every configured one, each as SHA-256 digests in constant time ({@link MessageDigest#isEqual}), with no
 * early exit: how long it takes tells neither the content nor the length of any token, nor which one matched.
 *
 * <p>Each token has an id that is not secret, for audit records and logs: the first 8 hex digits of its SHA-256
 * ({@code printf %s "$TOKEN" | sha256sum | cut -c1-8}). That tells a few tokens apart and stays the same across
 * instances and restarts, while 32 bits of a digest help nobody guess a token of 32 random characters.
 */
public final class AdminTokens {

    private static final int ID_HEX_DIGITS = 8;

    private record Configured(byte[] digest, String id) {}

    private final List<Configured> tokens;

    /** @param tokens the configured tokens, checked by the caller (printable ASCII); the same token twice counts once */
    public AdminTokens(List<String> tokens) {
        var configured = new ArrayList<Configured>();
        for (String token : tokens) {
            byte[] digest = Secrets.sha256(Objects.requireNonNull(token, "token"));
            if (configured.stream().noneMatch(known -> MessageDigest.isEqual(known.digest(), digest))) {
                configured.add(new Configured(digest, HexFormat.of().formatHex(digest).substring(0, ID_HEX_DIGITS)));
            }
        }
        this.tokens = List.copyOf(configured);
    }

    /** No admin token: the admin API is disabled. */
    public static AdminTokens none() {
        return new AdminTokens(List.of());
    }

    public boolean isEmpty() {
        return tokens.isEmpty();
    }

    /** The id of the configured token that was presented; empty when it is none of them (or null). */
    public Optional<String> idOf(String presented) {
        if (presented == null || tokens.isEmpty()) {
            return Optional.empty();
        }
        byte[] digest = Secrets.sha256(presented);
        String matched = null;
        for (Configured token : tokens) {
            if (MessageDigest.isEqual(token.digest(), digest)) {
                matched = token.id();
            }
        }
        return Optional.ofNullable(matched);
    }

    public boolean matches(String presented) {
        return idOf(presented).isPresent();
    }

    /** The ids of the configured tokens, in the order configured. */
    public List<String> ids() {
        return tokens.stream().map(Configured::id).toList();
    }

    @Override
    public String toString() {
        return "AdminTokens" + ids();
    }
}
