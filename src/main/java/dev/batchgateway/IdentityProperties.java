package dev.batchgateway;

import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * Who may call: {@code GATEWAY_AUTH} ({@code api-keys}, the default, or {@code none}) and {@code GATEWAY_ADMIN_TOKEN},
 * the operator's secret for the admin API (unset: the admin API is disabled). Bound from {@code gateway.identity.*}.
 */
@ConfigurationProperties("gateway.identity")
public record IdentityProperties(String mode, String adminToken) {

    static final int MIN_ADMIN_TOKEN_LENGTH = 32;

    public IdentityProperties {
        mode = mode == null || mode.isBlank() ? "api-keys" : mode.strip().toLowerCase(java.util.Locale.ROOT);
        if (!mode.equals("api-keys") && !mode.equals("none")) {
            throw new InvalidConfigurationException("GATEWAY_AUTH must be api-keys or none, was '" + shorten(mode) + "'");
        }
        adminToken = adminToken == null || adminToken.isBlank() ? null : adminToken.strip();
        if (adminToken != null && adminToken.length() < MIN_ADMIN_TOKEN_LENGTH) {
            // the length only: the token itself never reaches a log line
            throw new InvalidConfigurationException("GATEWAY_ADMIN_TOKEN must be at least " + MIN_ADMIN_TOKEN_LENGTH
                    + " characters, was " + adminToken.length() + ": generate one, e.g. openssl rand -base64 32");
        }
    }

    public boolean keysRequired() {
        return mode.equals("api-keys");
    }

    /** Never shows the admin token: records print every component, and settings end up in logs and failure reports. */
    @Override
    public String toString() {
        return "IdentityProperties[mode=" + mode + ", adminToken=" + (adminToken == null ? "none" : "(secret)") + "]";
    }

    private static String shorten(String text) {
        return text.length() <= 20 ? text : text.substring(0, 20) + "…";
    }
}
