package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The small values of the domain say what they are in the words the API and the table use. */
class DomainValuesTest {

    @Test
    void totalTokensArePromptAndCompletionTokens() {
        assertThat(new TokenUsage(3, 4).totalTokens()).isEqualTo(7);
    }

    @Test
    void eachOutcomeHasItsWordInTheTableAndTheApi() {
        assertThat(UsageOutcome.values()).extracting(UsageOutcome::word)
                .containsExactly("served", "client_gone", "deadline", "stream_failed");
    }

    @Test
    void aRejectionSaysWhyInItsMessage() {
        assertThat(new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofSeconds(2)))
                .hasMessage("the queue is full");
        assertThat(CompletionRejectedException.Reason.SHUTTING_DOWN.description()).isEqualTo("the gateway is shutting down");
        assertThat(CompletionRejectedException.Reason.USAGE_BACKLOG.description())
                .isEqualTo("usage records cannot be written at the moment");
    }
}
