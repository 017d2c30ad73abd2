package dev.batchgateway.usage;

import com.fasterxml.jackson.annotation.JsonProperty;

/** The body of a 200 from {@code GET /usage/{user_id}}: a user's completions and tokens in a time window. */
record UsageTotals(
        @JsonProperty("user_id") long userId,
        @JsonProperty("requests") long requests,
        @JsonProperty("prompt_tokens") long promptTokens,
        @JsonProperty("completion_tokens") long completionTokens,
        @JsonProperty("tokens") long tokens) {}
