package dev.batchgateway.identity;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Who may call: {@code GATEWAY_AUTH} ({@code api-keys}, the default, or {@code none}), and the operator's secrets for
 * the admin API, {@code GATEWAY_ADMIN_TOKEN} and {@code GATEWAY_ADMIN_TOKENS} (comma-separated, so that a new token can
 * be added before the old one is removed); none set: the admin API is disabled. Bound from {@code gateway.identity.*}.
 */
public record IdentitySettings(String mode, String adminToken, String adminTokens) {

    static final int MIN_ADMIN_TOKEN_LENGTH = 32;
    /** As long as {@code Callers} reads a bearer token. */
    static final int MAX_ADMIN_TOKEN_LENGTH = 512;
    private static final String GENERATE = "generate one, e.g. openssl rand -base64 32";

    public IdentitySettings {
        mode = mode == null || mode.isBlank() ? "api-keys" : mode.strip().toLowerCase(Locale.ROOT);
        if (!mode.equals("api-keys") && !mode.equals("none")) {
            throw new InvalidConfigurationException("GATEWAY_AUTH must be api-keys or none, was '" + shorten(mode) + "'");
        }
        // leading and trailing white space is no part of a token: HTTP strips it from a header's value
        adminToken = adminToken == null || adminToken.isBlank() ? null : adminToken.strip();
        adminTokens = adminTokens == null || adminTokens.isBlank() ? null : adminTokens.strip();
        if (adminToken != null) {
            check("GATEWAY_ADMIN_TOKEN", adminToken);
        }
        List<String> listed = split(adminTokens);
        for (int i = 0; i < listed.size(); i++) {
            check("GATEWAY_ADMIN_TOKENS' token " + (i + 1), listed.get(i));
        }
    }

    public boolean keysRequired() {
        return mode.equals("api-keys");
    }

    /** Every admin token: {@code GATEWAY_ADMIN_TOKEN}'s, then {@code GATEWAY_ADMIN_TOKENS}' in their order. */
    public List<String> allAdminTokens() {
        var all = new ArrayList<String>();
        if (adminToken != null) {
            all.add(adminToken);
        }
        all.addAll(split(adminTokens));
        return List.copyOf(all);
    }

    /** Never shows an admin token: records print every component, and settings end up in logs and failure reports. */
    @Override
    public String toString() {
        return "IdentitySettings[mode=" + mode + ", adminTokens=" + allAdminTokens().size() + " (secret)]";
    }

    private static List<String> split(String tokens) {
        if (tokens == null) {
            return List.of();
        }
        var listed = new ArrayList<String>();
        for (String token : tokens.split(",")) {
            if (!token.isBlank()) {
                listed.add(token.strip());
            }
        }
        return listed;
    }

    /**
     * A token must be something a client can send in an {@code Authorization} header (RFC 9110, field values): printable
     * ASCII and spaces. A control character cannot be sent; a character beyond ASCII (RFC 9110's obsolete "obs-text")
     * is sent in a different encoding by each client, so the gateway could never tell it matched. Only lengths and
     * kinds of characters are named, never the token.
     */
    private static void check(String name, String token) {
        if (token.length() < MIN_ADMIN_TOKEN_LENGTH) {
            throw new InvalidConfigurationException(name + " must be at least " + MIN_ADMIN_TOKEN_LENGTH
                    + " characters, was " + token.length() + ": " + GENERATE);
        }
        if (token.length() > MAX_ADMIN_TOKEN_LENGTH) {
            throw new InvalidConfigurationException(name + " must be at most " + MAX_ADMIN_TOKEN_LENGTH
                    + " characters, was " + token.length() + ": " + GENERATE);
        }
        if (token.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
            throw new InvalidConfigurationException(name + " has a control character (a tab, a line break, …), which no"
                    + " HTTP header can carry: use printable ASCII and spaces only, or " + GENERATE);
        }
        if (token.chars().anyMatch(c -> c > 0x7e)) {
            throw new InvalidConfigurationException(name + " has a character beyond ASCII, which HTTP clients send each"
                    + " in their own encoding: use printable ASCII and spaces only, or " + GENERATE);
        }
    }

    private static String shorten(String text) {
        return text.length() <= 20 ? text : text.substring(0, 20) + "…";
    }
}
