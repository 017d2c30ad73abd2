package dev.batchgateway.usage;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.UsageOutcome;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The body of a 200 from {@code GET /usage/{user_id}}: a user's billed completions and tokens in a time window, in
 * total, by what became of the requests ({@code served}, {@code client_gone}, {@code deadline},
 * {@code stream_failed}: every one is billed) and by the service tier they ran in ({@code default}, {@code flex}).
 */
record UsageTotals(
        @JsonProperty("user_id") long userId,
        @JsonProperty("requests") long requests,
        @JsonProperty("prompt_tokens") long promptTokens,
        @JsonProperty("completion_tokens") long completionTokens,
        @JsonProperty("tokens") long tokens,
        @JsonProperty("by_outcome") Map<String, Sum> byOutcome,
        @JsonProperty("by_service_tier") Map<String, Sum> byServiceTier,
        @JsonProperty("group_by") @JsonInclude(JsonInclude.Include.NON_NULL) String groupBy,
        @JsonProperty("groups") @JsonInclude(JsonInclude.Include.NON_NULL) List<Group> groups) {

    /**
     * One day's, model's, tier's or user's share of the totals ({@code group_by=day|model|service_tier}, and
     * {@code user} in the export): {@code day} (UTC, e.g. 2026-11-24), {@code model} ({@code ""} for rows recorded
     * without one), {@code service_tier} or {@code user_id}, then the same sums as the totals.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    record Group(
            @JsonProperty("user_id") Long userId,
            @JsonProperty("day") String day,
            @JsonProperty("model") String model,
            @JsonProperty("service_tier") String serviceTier,
            @JsonProperty("requests") long requests,
            @JsonProperty("prompt_tokens") long promptTokens,
            @JsonProperty("completion_tokens") long completionTokens,
            @JsonProperty("tokens") long tokens,
            @JsonProperty("by_outcome") Map<String, Sum> byOutcome,
            @JsonProperty("by_service_tier") Map<String, Sum> byServiceTier) {}

    /** What the sums of a group are split by: what became of the requests, and the tier they ran in. */
    record Split(String outcome, String serviceTier) {}

    /** The completions and tokens of one outcome. */
    record Sum(
            @JsonProperty("requests") long requests,
            @JsonProperty("prompt_tokens") long promptTokens,
            @JsonProperty("completion_tokens") long completionTokens,
            @JsonProperty("tokens") long tokens) {

        static final Sum NONE = new Sum(0, 0, 0, 0);

        Sum plus(Sum other) {
            return new Sum(requests + other.requests, promptTokens + other.promptTokens,
                    completionTokens + other.completionTokens, tokens + other.tokens);
        }
    }

    /**
     * The totals of these sums by outcome and by tier; every outcome and every tier is listed, with zeros where there is
     * none.
     */
    static UsageTotals of(long userId, Map<Split, Sum> sums) {
        Map<String, Sum> byOutcome = new LinkedHashMap<>();
        for (UsageOutcome outcome : UsageOutcome.values()) {
            byOutcome.put(outcome.word(), Sum.NONE);
        }
        Map<String, Sum> byServiceTier = new LinkedHashMap<>();
        for (ServiceTier tier : ServiceTier.values()) {
            byServiceTier.put(tier.wireName(), Sum.NONE);
        }
        sums.forEach((split, sum) -> {
            byOutcome.merge(split.outcome(), sum, Sum::plus);
            byServiceTier.merge(split.serviceTier(), sum, Sum::plus);
        });
        Sum total = byOutcome.values().stream().reduce(Sum.NONE, Sum::plus);
        return new UsageTotals(userId, total.requests(), total.promptTokens(), total.completionTokens(), total.tokens(),
                byOutcome, byServiceTier, null, null);
    }

    /**
     * The totals of groups (by key, each by outcome and tier), and the groups themselves in key order.
     *
     * @param groupBy {@code day}, {@code model}, {@code service_tier} or {@code user}: which field of each group holds
     *     its key
     */
    static UsageTotals grouped(long userId, String groupBy, Map<String, Map<Split, Sum>> groups) {
        return grouped(userId, groupBy, groups.entrySet().stream().toList());
    }

    static UsageTotals grouped(long userId, String groupBy, List<Map.Entry<String, Map<Split, Sum>>> groups) {
        Map<Split, Sum> all = new LinkedHashMap<>();
        var list = new java.util.ArrayList<Group>();
        for (var group : groups) {
            UsageTotals share = of(userId, group.getValue());
            group.getValue().forEach((split, sum) -> all.merge(split, sum, Sum::plus));
            list.add(new Group(groupBy.equals("user") ? Long.valueOf(group.getKey()) : null,
                    groupBy.equals("day") ? group.getKey() : null, groupBy.equals("model") ? group.getKey() : null,
                    groupBy.equals("service_tier") ? group.getKey() : null,
                    share.requests(), share.promptTokens(), share.completionTokens(), share.tokens(), share.byOutcome(),
                    share.byServiceTier()));
        }
        UsageTotals total = of(userId, all);
        return new UsageTotals(userId, total.requests(), total.promptTokens(), total.completionTokens(), total.tokens(),
                total.byOutcome(), total.byServiceTier(), groupBy, List.copyOf(list));
    }
}
