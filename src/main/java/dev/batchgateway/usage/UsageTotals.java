package dev.batchgateway.usage;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.UsageOutcome;
import java.util.LinkedHashMap;
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
        @JsonProperty("by_outcome") Map<String, Sum> byOutcome) {

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
        return new UsageTotals(userId, total.requests(), total.promptTokens(), total.completionTokens(), total.tokens(), all);
    }
}
