package dev.batchgateway.budget;

/**
 * A user's limits, each optional (null: unlimited): tokens per calendar day and per calendar month, requests per
 * calendar minute, all in UTC. Tokens are the worker's counts, prompt and completion together, as billed; a request is
 * one completion, one usage row.
 */
public record Limits(Long tokensPerDay, Long tokensPerMonth, Long requestsPerMinute) {

    /** No limit at all. */
    public static final Limits NONE = new Limits(null, null, null);

    public Limits {
        for (Window window : Window.values()) {
            Long limit = switch (window) {
                case MINUTE -> requestsPerMinute;
                case DAY -> tokensPerDay;
                case MONTH -> tokensPerMonth;
            };
            if (limit != null && limit < 0) {
                throw new IllegalArgumentException(window.limitName() + " must not be negative, was " + limit);
            }
        }
    }

    /** The limit of this window, or null when it has none. */
    public Long of(Window window) {
        return switch (window) {
            case MINUTE -> requestsPerMinute;
            case DAY -> tokensPerDay;
            case MONTH -> tokensPerMonth;
        };
    }

    public boolean unlimited() {
        return tokensPerDay == null && tokensPerMonth == null && requestsPerMinute == null;
    }
}
