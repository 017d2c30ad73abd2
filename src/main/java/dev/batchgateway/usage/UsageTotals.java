package dev.batchgateway.usage;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.UsageOutcome;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The body of a 200 from {@code GET /usage/{user_id}}: a user's billed completions and tokens in a time window, in
 * total and by what became of the requests ({@code served}, {@code client_gone}, {@code deadline},
 * {@code stream_failed}: every one is billed).
 */
record UsageTotals(
        @JsonProperty("user_id") long userId,
        @JsonProperty("requests") long requests,
        @JsonProperty("prompt_tokens") long promptTokens,
        @JsonProperty("completion_tokens") long completionTokens,
        @JsonProperty("tokens") long tokens,
        @JsonProperty("by_outcome") Map<String, Sum> byOutcome,
        @JsonProperty("group_by") @JsonInclude(JsonInclude.Include.NON_NULL) String groupBy,
        @JsonProperty("groups") @JsonInclude(JsonInclude.Include.NON_NULL) List<Group> groups) {

    /**
     * One day's or one model's share of the totals ({@code group_by=day|model}): {@code day} (UTC, e.g. 2026-11-24) or
     * {@code model} ({@code ""} for rows recorded without one), then the same sums as the totals.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    record Group(
            @JsonProperty("user_id") Long userId,
            @JsonProperty("day") String day,
            @JsonProperty("model") String model,
            @JsonProperty("requests") long requests,
            @JsonProperty("prompt_tokens") long promptTokens,
            @JsonProperty("completion_tokens") long completionTokens,
            @JsonProperty("tokens") long tokens,
            @JsonProperty("by_outcome") Map<String, Sum> byOutcome) {}

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

    /** The totals of these sums by outcome; every outcome is listed, with zeros where there is none. */
    static UsageTotals of(long userId, Map<String, Sum> byOutcome) {
        Map<String, Sum> all = new LinkedHashMap<>();
        for (UsageOutcome outcome : UsageOutcome.values()) {
            all.put(outcome.word(), byOutcome.getOrDefault(outcome.word(), Sum.NONE));
        }
        Sum total = all.values().stream().reduce(Sum.NONE, Sum::plus);
        return new UsageTotals(userId, total.requests(), total.promptTokens(), total.completionTokens(), total.tokens(), all,
                null, null);
    }

    /**
     * The totals of groups (by key, each by outcome), and the groups themselves in key order.
     *
     * @param groupBy {@code day}, {@code model} or {@code user}: which field of each group holds its key
     */
    static UsageTotals grouped(long userId, String groupBy, Map<String, Map<String, Sum>> groups) {
        return grouped(userId, groupBy, groups.entrySet().stream().toList());
    }

    static UsageTotals grouped(long userId, String groupBy, List<Map.Entry<String, Map<String, Sum>>> groups) {
        Map<String, Sum> all = new LinkedHashMap<>();
        var list = new java.util.ArrayList<Group>();
        for (var group : groups) {
            UsageTotals share = of(userId, group.getValue());
            share.byOutcome().forEach((outcome, sum) -> all.merge(outcome, sum, Sum::plus));
            list.add(new Group(groupBy.equals("user") ? Long.valueOf(group.getKey()) : null,
                    groupBy.equals("day") ? group.getKey() : null, groupBy.equals("model") ? group.getKey() : null,
                    share.requests(), share.promptTokens(), share.completionTokens(), share.tokens(), share.byOutcome()));
        }
        UsageTotals total = of(userId, all);
        return new UsageTotals(userId, total.requests(), total.promptTokens(), total.completionTokens(), total.tokens(),
                total.byOutcome(), groupBy, List.copyOf(list));
    }
}
