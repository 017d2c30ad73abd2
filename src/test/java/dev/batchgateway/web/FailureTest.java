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
import java.util.List;
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
    void aLimitThatOnlyItsWindowsEndCuresSaysNotToRetryAndWhenItEnds() {
        // Given a day's limit spent until midnight, 16 hours away, and a month's, days away
        var resets = Instant.parse("2026-12-06T00:00:00Z");
        var day = Failure.of(new LimitExceededException(Window.DAY, 100, 0, 287, resets, Duration.ofHours(16), false, false));
        var month = Failure.of(new LimitExceededException(Window.MONTH, 100, 0, 287, resets, Duration.ofDays(3), false, false));

        // Then OpenAI's SDKs are told not to retry, and the truth of when to try again is kept in Retry-After
        for (Failure failure : List.of(day, month)) {
            assertThat(failure.headers().getFirst("x-should-retry")).isEqualTo("false");
            assertThat(failure.headers().containsHeader("retry-after-ms")).as("no wait an SDK would honour").isFalse();
            assertThat(failure.retryable()).isFalse();
        }
        assertThat(day.headers().getFirst(HttpHeaders.RETRY_AFTER)).isEqualTo(Long.toString(16 * 3600));
    }

    @Test
    void aTokenLimitsRefusalCarriesWhatTheReservationIsMadeOf() {
        var resets = Instant.parse("2026-12-06T00:00:00Z");
        var tokens = Failure.of(new LimitExceededException(Window.DAY, 100, 40, 51, resets, Duration.ofHours(16), false, false,
                new dev.batchgateway.completion.TokenBound.Parts(5, 16, 30), 1));
        var requests = Failure.of(new LimitExceededException(Window.MINUTE, 5, 0, 1, resets, Duration.ofSeconds(20), false, false,
                new dev.batchgateway.completion.TokenBound.Parts(5, 16, 30), 1));

        assertThat(tokens.fields()).containsEntry("reserved", java.util.Map.of("prompt_bytes", 5L, "allowance", 16L, "max_tokens", 30L));
        assertThat(tokens.message()).contains("max_tokens ≤ 19 would fit");
        assertThat(requests.fields()).as("a request limit reserves no tokens").doesNotContainKey("reserved");
    }

    @Test
    void aLimitThatASecondsWaitCuresStaysRetryableWithItsWaitInMilliseconds() {
        var resets = Instant.parse("2026-12-05T16:01:00Z");
        // the minute's requests, 20 s before the next minute
        var perMinute = Failure.of(new LimitExceededException(Window.MINUTE, 5, 0, 1, resets, Duration.ofSeconds(20), false, false));
        // a day's limit that is reserved by requests in flight, back within seconds
        var daySoon = Failure.of(new LimitExceededException(Window.DAY, 1000, 10, 287, resets, Duration.ofSeconds(2), true, false));
        // a day's limit whose window ends in 40 s: a retry after the wait is served
        var dayEnding = Failure.of(new LimitExceededException(Window.DAY, 1000, 10, 287, resets, Duration.ofSeconds(40), false, false));

        assertThat(perMinute.headers().getFirst(HttpHeaders.RETRY_AFTER)).isEqualTo("20");
        assertThat(perMinute.headers().getFirst("retry-after-ms")).isEqualTo("20000");
        assertThat(daySoon.headers().getFirst("retry-after-ms")).isEqualTo("2000");
        assertThat(dayEnding.headers().getFirst("retry-after-ms")).isEqualTo("40000");
        for (Failure failure : List.of(perMinute, daySoon, dayEnding)) {
            assertThat(failure.headers().containsHeader("x-should-retry")).isFalse();
            assertThat(failure.retryable()).isTrue();
        }
    }

    @Test
    void aWaitOfExactlyAMinuteIsRetryableAndOneMillisecondMoreIsNot() {
        var resets = Instant.parse("2026-12-05T16:01:00Z");
        var minute = Failure.of(new LimitExceededException(Window.DAY, 1, 0, 2, resets, Duration.ofSeconds(60), false, false));
        var beyond = Failure.of(new LimitExceededException(Window.DAY, 1, 0, 2, resets, Duration.ofMillis(60_001), false, false));

        assertThat(minute.headers().getFirst("retry-after-ms")).isEqualTo("60000");
        assertThat(beyond.headers().getFirst("x-should-retry")).isEqualTo("false");
    }

    @Test
    void theOther503sStayRetryableWithTheirWaitInMilliseconds() {
        var queueFull = Failure.of(new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofMillis(300)));
        var worker = Failure.of(new WorkerException.Unavailable("connection refused"));

        assertThat(queueFull.headers().getFirst("retry-after-ms")).as("at least a second, as Retry-After").isEqualTo("1000");
        var later = Failure.of(new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofMillis(2900)));
        assertThat(later.headers().getFirst("retry-after-ms")).isEqualTo("2900");
        assertThat(worker.headers().getFirst("retry-after-ms")).isEqualTo("5000");
        assertThat(queueFull.headers().containsHeader("x-should-retry")).isFalse();
        assertThat(worker.headers().containsHeader("x-should-retry")).isFalse();
        assertThat(Failure.of(new WorkerException.TimedOut("1000 ms")).headers().containsHeader("x-should-retry")).isFalse();
    }

    @Test
    void a429NamesItsLimitForTheMetricAKeysOwnApartAndNothingElseDoes() {
        var resets = Instant.parse("2026-12-06T00:00:00Z");

        assertThat(Failure.of(new LimitExceededException(Window.DAY, 1, 0, 2, resets, Duration.ofHours(1), false, false))
                .limitReason()).isEqualTo("tokens_per_day");
        assertThat(Failure.of(new LimitExceededException(Window.MONTH, 1, 0, 2, resets, Duration.ofHours(1), false, true))
                .limitReason()).isEqualTo("key_tokens_per_month");
        assertThat(Failure.of(new LimitExceededException(Window.MINUTE, 1, 0, 1, resets, Duration.ofSeconds(1), false, true))
                .limitReason()).isEqualTo("key_requests_per_minute");
        assertThat(Failure.of(new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofSeconds(1)))
                .limitReason()).isNull();
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
