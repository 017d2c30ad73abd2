package dev.batchgateway.web;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.Completion;
import java.util.Locale;
import java.util.UUID;

/** The body of a 200 from {@code /complete}. */
record CompletionResponse(
        @JsonProperty("completion") String completion,
        @JsonProperty("prompt_tokens") int promptTokens,
        @JsonProperty("completion_tokens") int completionTokens,
        @JsonProperty("tokens") int tokens,
        @JsonProperty("finish_reason") String finishReason,
        @JsonProperty("request_id") UUID requestId) {

    static CompletionResponse of(Completion completion) {
        return new CompletionResponse(
                completion.text(),
                completion.usage().promptTokens(),
                completion.usage().completionTokens(),
                completion.usage().totalTokens(),
                completion.finishReason().name().toLowerCase(Locale.ROOT),
                completion.requestId());
    }
}
