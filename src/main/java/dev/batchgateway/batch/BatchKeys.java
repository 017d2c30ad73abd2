package dev.batchgateway.batch;

import dev.batchgateway.completion.Payer;
import java.util.UUID;

/**
 * The key a batch was created with, as it stands when a line runs: the line is a request of that key, under its own
 * limits beside its user's, for the models it may use, and only while it is valid.
 */
public interface BatchKeys {

    /**
     * How a line asking for {@code model} of the user's batch created with {@code keyId} runs now.
     *
     * @param keyId null for a batch created before keys were recorded: its lines run as their user's
     * @throws RuntimeException the key cannot be told now (its store away): the line is tried again later
     */
    Standing standing(long user, UUID keyId, String model);

    /** The line runs as this payer's request, or the endpoint refuses it as it would the key's request. */
    sealed interface Standing {
        record Runs(Payer payer) implements Standing {}

        /** @param why what the endpoint would answer ({@link LineFormat#failure}): 401 for a key revoked or expired, 403 for a model the key may not use */
        record Refused(RuntimeException why) implements Standing {}
    }
}
