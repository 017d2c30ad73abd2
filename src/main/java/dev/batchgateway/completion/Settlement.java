package dev.batchgateway.completion;

import java.util.List;

/**
 * Where the scheduler says what each request it took costs, exactly once per request, on every path: served, dropped
 * before its batch left (cancelled, caller gone, deadline, shutdown), failed by the worker or abandoned. Budgets turn the
 * request's reservation into what it cost.
 *
 * <p>Unlike {@link SchedulerEvents}, which is telemetry and may lose an observer's failure, a settlement is money: the
 * scheduler calls it in a {@code finally}, and one that throws is logged as an error and counted ({@link
 * Scheduler#settlementFailures()}), never silently dropped. An implementation should not throw.
 */
@FunctionalInterface
public interface Settlement {

    /** For schedulers whose requests reserve nothing. */
    Settlement NONE = (request, billed) -> {};

    /**
     * What a request costs is final: {@code billed} is the usage recorded for it in the ledger, or null when nothing is
     * billed (it ended before its batch left, or the worker did not generate it). For a request sent to the worker this
     * comes when its batch ended, after its future completed: a request whose caller left or whose deadline passed after
     * dispatch is billed all the same.
     */
    void settled(CompletionRequest request, TokenUsage billed);

    /**
     * What billing {@code usage} to a request costs its budget windows, to be charged in the same commit as its usage
     * row; none when it reserved nothing. Once charges were asked for, a later {@link #settled} with that usage takes
     * them as charged by the row in the store (or as possibly charged, when the write's answer was lost), and does not
     * report them again.
     *
     * @throws CompletionRejectedException when the usage cannot be charged to a budget hold this instance can still
     *     count on: then no row is written, the answer does not leave, and the request is settled with nothing billed
     */
    default List<BudgetCharge> charges(CompletionRequest request, TokenUsage usage) {
        return List.of();
    }
}
