package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.budget.LimitExceededException;
import dev.batchgateway.budget.Window;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.DeadlineExceededException;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.identity.NotAuthenticatedException;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;
import org.springframework.http.HttpHeaders;

/**
 * The rows of the one failure table that the slice and gateway tests reach only through a real worker or a real
 * budget; both renderers read these same rows.
 */
class FailureTest {

    @Test
    void aPromptTheWorkerRefusesIsTheCallersToFixNamingThePrompt() {
        var failure = Failure.of(new WorkerException.Rejected("longer than the model's context"));

        assertThat(failure.status().value()).isEqualTo(400);
        assertThat(failure.message()).isEqualTo("the worker refused this request: longer than the model's context");
        assertThat(failure.type()).isEqualTo("invalid_request_error");
        assertThat(failure.param()).isEqualTo("prompt");
        assertThat(failure.headers().containsHeader(HttpHeaders.RETRY_AFTER)).isFalse();
    }

    @Test
    void theWorkersFailuresAreA503WithRetryAfterA504OrA502() {
        var unavailable = Failure.of(new WorkerException.Unavailable("connection refused"));
        assertThat(unavailable.status().value()).isEqualTo(503);
        assertThat(unavailable.headers().getFirst(HttpHeaders.RETRY_AFTER)).isEqualTo("5");
        assertThat(unavailable.type()).isEqualTo("server_error");

        assertThat(Failure.of(new WorkerException.TimedOut("1000 ms")).type()).isEqualTo("timeout");
        assertThat(Failure.of(new WorkerException.TimedOut("1000 ms")).status().value()).isEqualTo(504);
        assertThat(Failure.of(new DeadlineExceededException(Duration.ofSeconds(2))).status().value()).isEqualTo(504);
        assertThat(Failure.of(new WorkerException.Misconfigured("no such model")).message())
                .isEqualTo("the worker is misconfigured: no such model");
        assertThat(Failure.of(new WorkerException.Misconfigured("no such model")).status().value()).isEqualTo(502);
    }

    @Test
    void retryAfterIsInWholeSecondsAndAtLeastOne() {
        var soon = new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofMillis(300));
        assertThat(Failure.of(soon).headers().getFirst(HttpHeaders.RETRY_AFTER)).isEqualTo("1");
        var later = new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, Duration.ofMillis(2900));
        assertThat(Failure.of(later).headers().getFirst(HttpHeaders.RETRY_AFTER)).isEqualTo("2");
    }

    @Test
    void overTheMonthsLimitIsOpenAisInsufficientQuotaWithTheLimitsFields() {
        var resets = Instant.parse("2026-12-01T00:00:00Z");
        var failure = Failure.of(new LimitExceededException(Window.MONTH, 1000, 10, 274, resets, Duration.ofDays(3), false, true));

        assertThat(failure.status().value()).isEqualTo(429);
        assertThat(failure.type()).isEqualTo("insufficient_quota");
        assertThat(failure.code()).isEqualTo("insufficient_quota");
        assertThat(failure.headers().getFirst(HttpHeaders.RETRY_AFTER)).isEqualTo(Long.toString(Duration.ofDays(3).toSeconds()));
        assertThat(failure.fields()).containsEntry("limit", "tokens_per_month").containsEntry("limit_scope", "key")
                .containsEntry("limit_value", 1000L).containsEntry("remaining", 10L).containsEntry("requested", 274L)
                .containsEntry("resets_at", "2026-12-01T00:00:00Z");

        var perMinute = Failure.of(new LimitExceededException(Window.MINUTE, 5, 0, 1, resets, Duration.ofSeconds(20), false, false));
        assertThat(perMinute.type()).isEqualTo("requests");
        assertThat(perMinute.code()).isEqualTo("rate_limit_exceeded");
    }

    @Test
    void every401CarriesTheBearerChallenge() {
        var failure = Failure.of(new NotAuthenticatedException("send your API key"));

        assertThat(failure.status().value()).isEqualTo(401);
        assertThat(failure.headers().getFirst(HttpHeaders.WWW_AUTHENTICATE)).isEqualTo("Bearer realm=\"batch-gateway\"");
        assertThat(failure.code()).isEqualTo("invalid_api_key");
    }

    @Test
    void anythingElseIsA500ThatSaysNothingOfIt() {
        var failure = Failure.of(new IllegalStateException("secret internals"));

        assertThat(failure.status().value()).isEqualTo(500);
        assertThat(failure.message()).doesNotContain("secret").isEqualTo("internal error; the gateway's log has the details");
    }

    @Test
    void aCancelledAnswerIsThrownAsTheCallerGoneAndA499() {
        RuntimeException thrown = Failure.thrown(new CancellationException());

        assertThat(thrown).isInstanceOf(CallerGoneException.class);
        assertThat(Failure.of(thrown).status().value()).isEqualTo(499);
        assertThat(Failure.of(thrown).type()).isEqualTo("client_closed_request");
        assertThat(Failure.thrown(new IOException("x"))).isInstanceOf(CompletionException.class).hasCauseInstanceOf(IOException.class);
    }
}
