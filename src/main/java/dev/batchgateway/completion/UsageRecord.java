package dev.batchgateway.completion;

import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.UUID;

/**
 * One completion as it is billed: who, how many tokens, which model, when, what became of the request, the service
 * tier it ran in, and what it costs its user's limited budget windows (none for a user without limits), charged in the
 * same commit as the row.
 */
public record UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt, UsageOutcome outcome,
        ServiceTier serviceTier, List<BudgetCharge> charges) {

    public UsageRecord {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(usage, "usage");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(servedAt, "servedAt");
        Objects.requireNonNull(outcome, "outcome");
        Objects.requireNonNull(serviceTier, "serviceTier");
        charges = List.copyOf(charges);
    }

    /** A row that charges no budget. */
    public UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt, UsageOutcome outcome,
            ServiceTier serviceTier) {
        this(requestId, userId, usage, model, servedAt, outcome, serviceTier, List.of());
    }

    /**
     * The row of a request whose tokens the worker generated: its id, user and tier are the request's. Rows of requests
     * are built here, so that none forgets the tier it ran in.
     */
    public static UsageRecord of(CompletionRequest request, TokenUsage usage, String model, Instant servedAt,
            UsageOutcome outcome) {
        return new UsageRecord(request.requestId(), request.userId(), usage, model, servedAt, outcome, request.serviceTier());
    }

    /** This row, charging these budget windows. */
    public UsageRecord charging(List<BudgetCharge> charges) {
        return new UsageRecord(requestId, userId, usage, model, servedAt, outcome, serviceTier, charges);
    }

    /** A completion its caller got, in the default tier. */
    public UsageRecord(UUID requestId, long userId, TokenUsage usage, String model, Instant servedAt) {
        this(requestId, userId, usage, model, servedAt, UsageOutcome.SERVED, ServiceTier.DEFAULT);
    }
}
