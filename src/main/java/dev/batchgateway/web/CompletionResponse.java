package dev.batchgateway.web;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.ServiceTier;
import java.util.Locale;
import java.util.UUID;

/** The body of a 200 from {@code /complete}, with the service tier the request ran in. */
record CompletionResponse(
        @JsonProperty("completion") String completion,
        @JsonProperty("prompt_tokens") int promptTokens,
        @JsonProperty("completion_tokens") int completionTokens,
        @JsonProperty("tokens") int tokens,
        @JsonProperty("finish_reason") String finishReason,
        @JsonProperty("request_id") UUID requestId,
        @JsonProperty("service_tier") String serviceTier) {

    static CompletionResponse of(Completion completion, ServiceTier tier) {
        return new CompletionResponse(
                completion.text(),
                completion.usage().promptTokens(),
                completion.usage().completionTokens(),
                completion.usage().totalTokens(),
                completion.finishReason().name().toLowerCase(Locale.ROOT),
                completion.requestId(),
                tier.wireName());
    }
}
