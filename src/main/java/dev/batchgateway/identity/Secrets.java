package dev.batchgateway.identity;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.regex.Pattern;

/**
 * The shape of an API key: {@code bg_} and 43 base64url characters, 256 bits from {@link SecureRandom}. A single
 * SHA-256 is the right digest for secrets of that entropy (nothing to brute-force), as GitHub and Stripe do.
 */
final class Secrets {

    static final String PREFIX = "bg_";
    /** Characters of a key shown in listings: the prefix and 8 of the 43 random ones (48 bits, enough to tell keys apart). */
    static final int DISPLAY_LENGTH = PREFIX.length() + 8;
    private static final int RANDOM_BYTES = 32;
    private static final Pattern SHAPE = Pattern.compile("bg_[A-Za-z0-9_-]{43}");

    private Secrets() {}

    static String newSecret(SecureRandom random) {
        byte[] bytes = new byte[RANDOM_BYTES];
        random.nextBytes(bytes);
        return PREFIX + Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    /** Whether a presented token could be a key at all; anything else is refused without asking the store. */
    static boolean wellFormed(String token) {
        return token != null && token.length() == PREFIX.length() + 43 && SHAPE.matcher(token).matches();
    }

    static String displayPrefix(String secret) {
        return secret.substring(0, DISPLAY_LENGTH);
    }

    static byte[] sha256(String text) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException everyJdkHasIt) {
            throw new IllegalStateException(everyJdkHasIt);
        }
    }
}
