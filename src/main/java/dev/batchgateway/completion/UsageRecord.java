package dev.batchgateway.completion;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.UUID;

/**
 * One completion as it is billed: who, how many tokens, which model, when, what became of the request, and what it
 * costs its user's limited budget windows (none for a user without limits), charged in the same commit as the row.
 */
public record UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt, UsageOutcome outcome,
        List<BudgetCharge> charges) {

    public UsageRecord {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(usage, "usage");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(servedAt, "servedAt");
        Objects.requireNonNull(outcome, "outcome");
        charges = List.copyOf(charges);
    }

    /** A row that charges no budget. */
    public UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt, UsageOutcome outcome) {
        this(requestId, userId, usage, model, servedAt, outcome, List.of());
    }

    /** This row, charging these budget windows. */
    public UsageRecord charging(List<BudgetCharge> charges) {
        return new UsageRecord(requestId, userId, usage, model, servedAt, outcome, charges);
    }

    /** A completion its caller got. */
    public UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt) {
        this(requestId, userId, usage, model, servedAt, UsageOutcome.SERVED);
    }
}
