package dev.batchgateway.budget;

import dev.batchgateway.settings.InvalidConfigurationException;

/**
 * The limits of users without their own: {@code GATEWAY_DEFAULT_TOKENS_PER_DAY}, {@code GATEWAY_DEFAULT_TOKENS_PER_MONTH},
 * {@code GATEWAY_DEFAULT_REQUESTS_PER_MINUTE}, each a whole number from 0, empty for no limit. Bound from
 * {@code gateway.default.*}.
 */
public record DefaultLimits(Long tokensPerDay, Long tokensPerMonth, Long requestsPerMinute) {

    public DefaultLimits {
        atLeastZero(tokensPerDay, "GATEWAY_DEFAULT_TOKENS_PER_DAY");
        atLeastZero(tokensPerMonth, "GATEWAY_DEFAULT_TOKENS_PER_MONTH");
        atLeastZero(requestsPerMinute, "GATEWAY_DEFAULT_REQUESTS_PER_MINUTE");
    }

    public Limits limits() {
        return new Limits(tokensPerDay, tokensPerMonth, requestsPerMinute);
    }

    private static void atLeastZero(Long value, String variable) {
        if (value != null && value < 0) {
            throw new InvalidConfigurationException(variable + " must be a whole number from 0, or empty for no limit, was " + value);
        }
    }
}
