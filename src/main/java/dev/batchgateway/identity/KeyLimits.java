package dev.batchgateway.identity;

/**
 * A key's own limits, beside its user's, in the user limits' shape: tokens per UTC day and month, requests per UTC
 * minute, each null for none. Enforced like a user's, in a budget of the key's own, beside its user's.
 */
public record KeyLimits(Long tokensPerDay, Long tokensPerMonth, Long requestsPerMinute) {

    /** No limits of the key's own: only its user's apply. */
    public static final KeyLimits NONE = new KeyLimits(null, null, null);

    public KeyLimits {
        for (Long limit : new Long[] {tokensPerDay, tokensPerMonth, requestsPerMinute}) {
            if (limit != null && limit < 0) {
                throw new IllegalArgumentException("a key's limits must not be negative, was " + limit);
            }
        }
    }

    public boolean none() {
        return tokensPerDay == null && tokensPerMonth == null && requestsPerMinute == null;
    }
}
