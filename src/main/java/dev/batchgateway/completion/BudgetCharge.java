package dev.batchgateway.completion;

import java.time.Instant;
import java.util.Objects;
import java.util.UUID;

/**
 * What a usage row costs one budget window, written in the same commit as the row: {@code amount} counts as billed in
 * {@code account}'s (the row's user, or the key it was made with, if the key has limits of its own) {@code window}
 * ({@code minute}, {@code day} or {@code month}) that starts at {@code windowStart}, and leaves the hold the request
 * reserved from, {@code holder}'s hold since its operation {@code holdSince}. So the budget never learns of billed
 * tokens later than the usage table does, and a crash cannot make them free again.
 */
public record BudgetCharge(long account, UUID holder, long holdSince, String window, Instant windowStart, long amount) {

    public BudgetCharge {
        Objects.requireNonNull(holder, "holder");
        Objects.requireNonNull(window, "window");
        Objects.requireNonNull(windowStart, "windowStart");
        if (amount < 0) {
            throw new IllegalArgumentException("a charge must not be negative, was " + amount);
        }
    }
}
