package dev.batchgateway.completion;

import java.util.Optional;

/**
 * The service tier a request runs in, with OpenAI's names. {@link #FLEX} runs on idle capacity: it never starts while
 * a default-tier request of its model waits, except in a default batch's empty seats.
 */
public enum ServiceTier {
    DEFAULT("default"),
    FLEX("flex");

    private final String wireName;

    ServiceTier(String wireName) {
        this.wireName = wireName;
    }

    /** The tier's name in requests, answers and usage rows: {@code default} or {@code flex}. */
    public String wireName() {
        return wireName;
    }

    /** The tier named {@code name} ({@code default} or {@code flex}), or empty for any other name. */
    public static Optional<ServiceTier> named(String name) {
        for (ServiceTier tier : values()) {
            if (tier.wireName.equals(name)) {
                return Optional.of(tier);
            }
        }
        return Optional.empty();
    }
}
