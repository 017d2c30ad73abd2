package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.RateLimitException;
import com.openai.models.completions.CompletionCreateParams;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The three kinds of 429 as OpenAI's SDKs see them, on both APIs: a day's or a month's limit that only its window's end
 * cures says {@code x-should-retry: false} with the truth in {@code Retry-After} (so the official SDK gives up at once
 * instead of sleeping until midnight), a minute's limit stays retryable with its short wait also in
 * {@code retry-after-ms}; each 429 is counted in {@code gateway_rejections_total} by the limit it was over.
 */
// the same settings as KeyTermsApiTest: one Spring context for both
@GatewayApplicationTest(properties = {"gateway.worker.type=simulated", "gateway.batch.max-wait=1ms"})
class LimitRetriesGatewayTest {

    /** Its reservation: the prompt's 2 bytes, 16 for special tokens and max_tokens 4, above every limit set here. */
    private static final String PROMPT = "{\"model\": \"simulated\", \"prompt\": \"hi\", \"max_tokens\": 4}";

    @Autowired
    GatewayClient gateway;

    private final JsonMapper json = JsonMapper.builder().build();
    private long user;

    @BeforeEach
    void newUser() {
        user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
    }

    @Test
    void theSdkDoesNotRetryADailyLimitAndTheGatewaySeesOneRequest() {
        // Given a user whose day's limit is smaller than any request
        limit("{\"tokens_per_day\": 10, \"tokens_per_month\": null, \"requests_per_minute\": null}");
        var sdk = OpenAIOkHttpClient.builder().baseUrl(gateway.uri("/v1").toString()).apiKey(gateway.key(user)).build();
        double before = counted("tokens_per_day");

        // When the official SDK, with its default two retries, asks for a completion (given 20 s, not until midnight)
        long started = System.nanoTime();
        Throwable failure;
        try (var caller = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<?> call = caller.submit(() -> sdk.completions().create(CompletionCreateParams.builder().model("simulated")
                    .prompt("hi").maxTokens(4).build()));
            failure = catchThrowable(() -> call.get(20, TimeUnit.SECONDS));
            call.cancel(true); // an SDK asleep before its retry is woken, so the test ends
        }
        double took = (System.nanoTime() - started) / 1e9;
        assertThat(failure).as("the SDK's call, after %.1f s", took).isInstanceOf(ExecutionException.class);
        assertThat(failure.getCause()).isInstanceOfSatisfying(RateLimitException.class, e -> {
            assertThat(e.code()).hasValue("rate_limit_exceeded");
            assertThat(e.headers().values("Retry-After")).singleElement()
                    .satisfies(wait -> assertUntilMidnight(Long.parseLong(wait)));
        });

        // Then it gave up at once: the gateway saw one request, not three, and nobody slept until midnight
        assertThat(counted("tokens_per_day") - before).as("requests refused by the day's limit").isEqualTo(1);
        assertThat(took).as("the SDK took %.1f s to give up, expected well under 10 s", took).isLessThan(10);
    }

    @Test
    void aDailyLimitSaysNotToRetryOnBothApis() {
        limit("{\"tokens_per_day\": 10, \"tokens_per_month\": null, \"requests_per_minute\": null}");
        double before = counted("tokens_per_day");

        var openAi = gateway.post("/v1/completions", gateway.bearer(user), PROMPT);
        var complete = gateway.post("/complete", gateway.bearer(user), "{\"prompt\": \"hi\", \"max_tokens\": 4}");

        assertNotToRetry(openAi, "application/json");
        assertThat(json.readTree(openAi.body()).at("/error/limit").asString()).isEqualTo("tokens_per_day");
        assertNotToRetry(complete, "application/problem+json");
        assertThat(json.readTree(complete.body()).get("limit").asString()).isEqualTo("tokens_per_day");
        assertThat(counted("tokens_per_day") - before).isEqualTo(2);
    }

    @Test
    void aMonthlyLimitSaysNotToRetryAsOpenAisInsufficientQuota() {
        // a chat of "hi" with max_tokens 4 reserves "user" + "hi" + 4 = 10 on the simulated worker (its template adds none)
        limit("{\"tokens_per_day\": null, \"tokens_per_month\": 9, \"requests_per_minute\": null}");
        double before = counted("tokens_per_month");

        var chat = gateway.post("/v1/chat/completions", gateway.bearer(user),
                "{\"model\": \"simulated\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 4}");

        assertThat(chat.statusCode()).as(chat.body()).isEqualTo(429);
        assertThat(chat.headers().firstValue("x-should-retry")).hasValue("false");
        assertThat(json.readTree(chat.body()).at("/error/code").asString()).isEqualTo("insufficient_quota");
        // the 429 says what the chat reserved, of what, and what would fit: 9 less its prompt's 6
        assertThat(json.readTree(chat.body()).at("/error/requested").asLong()).isEqualTo(10);
        assertThat(json.readTree(chat.body()).at("/error/message").asString()).contains(
                "this request reserves 10 tokens: its prompt's 6 UTF-8 bytes (at most a token each) + 0 allowed for special "
                        + "tokens and any chat template + max_tokens 4: max_tokens ≤ 3 would fit");
        long waitSeconds = Long.parseLong(chat.headers().firstValue("Retry-After").orElseThrow());
        Instant monthEnds = Instant.parse(json.readTree(chat.body()).at("/error/resets_at").asString());
        assertThat(waitSeconds).as("Retry-After, against the month's end at %s", monthEnds)
                .isBetween(Duration.between(Instant.now(), monthEnds).toSeconds() - 10, Duration.between(Instant.now(), monthEnds).toSeconds() + 10);
        assertThat(counted("tokens_per_month") - before).isEqualTo(1);
    }

    @Test
    void aMinutesLimitStaysRetryableWithItsShortWaitInSecondsAndMilliseconds() throws InterruptedException {
        // Given a user allowed one request a minute, with at least five seconds of this minute left
        limit("{\"tokens_per_day\": null, \"tokens_per_month\": null, \"requests_per_minute\": 1}");
        awaitMinuteWithSecondsLeft(5);
        double before = counted("requests_per_minute");
        assertThat(gateway.post("/v1/completions", gateway.bearer(user), PROMPT).statusCode()).isEqualTo(200);

        // When two more come within the minute, one on each API
        var openAi = gateway.post("/v1/completions", gateway.bearer(user), PROMPT);
        var complete = gateway.post("/complete", gateway.bearer(user), "{\"prompt\": \"hi\", \"max_tokens\": 4}");

        // Then both are retryable 429s whose wait, in seconds and in milliseconds, ends with the minute
        for (var refused : java.util.List.of(openAi, complete)) {
            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
            assertThat(refused.headers().firstValue("x-should-retry")).isEmpty();
            long seconds = Long.parseLong(refused.headers().firstValue("Retry-After").orElseThrow());
            long millis = Long.parseLong(refused.headers().firstValue("retry-after-ms").orElseThrow());
            assertThat(seconds).isBetween(1L, 60L);
            assertThat(millis).as("retry-after-ms against Retry-After %d s", seconds).isBetween(seconds * 1000, seconds * 1000 + 999);
        }
        assertThat(json.readTree(openAi.body()).at("/error/code").asString()).isEqualTo("rate_limit_exceeded");
        assertThat(counted("requests_per_minute") - before).isEqualTo(2);
    }

    @Test
    void aKeysOwnDailyLimitIsCountedAsTheKeysAndSaysNotToRetry() {
        // Given a key with a day's limit of its own, smaller than any request, for a user without limits
        var created = gateway.admin("POST", "/admin/keys", """
                {"user_id": %d, "name": "small", "limits": {"tokens_per_day": 10, "tokens_per_month": null,
                 "requests_per_minute": null}}""".formatted(user));
        assertThat(created.statusCode()).as(created.body()).isEqualTo(201);
        String key = "Bearer " + json.readTree(created.body()).get("key").asString();
        double keys = counted("key_tokens_per_day");
        double users = counted("tokens_per_day");

        var refused = gateway.post("/v1/completions", key, PROMPT);

        assertNotToRetry(refused, "application/json");
        assertThat(json.readTree(refused.body()).at("/error/limit_scope").asString()).isEqualTo("key");
        assertThat(counted("key_tokens_per_day") - keys).isEqualTo(1);
        assertThat(counted("tokens_per_day") - users).as("the users' own day's limit refused nothing").isZero();
        // and the series name no key and no user
        assertThat(gateway.get("/actuator/prometheus").body().lines().filter(line -> line.startsWith("gateway_rejections_total")))
                .allSatisfy(line -> assertThat(line).doesNotContain(Long.toString(user))
                        .doesNotContain(json.readTree(created.body()).get("id").asString()));
    }

    private void assertNotToRetry(HttpResponse<String> refused, String contentType) {
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(429);
        assertThat(refused.headers().firstValue("Content-Type")).hasValue(contentType);
        assertThat(refused.headers().firstValue("retry-after-ms")).isEmpty();
        assertUntilMidnight(Long.parseLong(refused.headers().firstValue("Retry-After").orElseThrow()));
        // within a minute of midnight a retry after the wait is served: then it is retryable, and says so
        assertThat(refused.headers().firstValue("x-should-retry"))
                .isEqualTo(secondsUntilMidnight() > 61 ? java.util.Optional.of("false") : java.util.Optional.empty());
    }

    /** A day's Retry-After is the time until the day's window ends, midnight UTC (as of its answer, moments ago). */
    private static void assertUntilMidnight(long waitSeconds) {
        long left = secondsUntilMidnight();
        assertThat(waitSeconds).as("Retry-After, with %d s left until midnight UTC", left).isBetween(left - 10, left + 10);
    }

    private static long secondsUntilMidnight() {
        Instant now = Instant.now();
        return Duration.between(now, now.truncatedTo(ChronoUnit.DAYS).plus(1, ChronoUnit.DAYS)).toSeconds();
    }

    /** Sets the user's limits, and waits (at most 5 s) until the gateway applies them. */
    private void limit(String limits) {
        var stored = gateway.admin("PUT", "/admin/users/" + user + "/limits", limits);
        assertThat(stored.statusCode()).as(stored.body()).isEqualTo(200);
        JsonNode expected = json.readTree(limits);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        JsonNode seen;
        do {
            seen = json.readTree(gateway.get("/usage/" + user).body()).get("limits");
        } while (!expected.equals(seen) && System.nanoTime() < deadline);
        assertThat(seen).as("the limits applied within 5 s").isEqualTo(expected);
    }

    /** Waits, if need be, for the next minute: a minute's limit counts calendar minutes. */
    private static void awaitMinuteWithSecondsLeft(int seconds) throws InterruptedException {
        Instant now = Instant.now();
        Instant end = now.truncatedTo(ChronoUnit.MINUTES).plus(1, ChronoUnit.MINUTES);
        if (Duration.between(now, end).compareTo(Duration.ofSeconds(seconds)) < 0) {
            Thread.sleep(Duration.between(now, end).plusMillis(100)); // waits for the clock, not for another thread
        }
    }

    /** {@code gateway_rejections_total} of one reason, as scraped now. */
    private double counted(String reason) {
        String series = "gateway_rejections_total{reason=\"" + reason + "\"}";
        return gateway.get("/actuator/prometheus").body().lines().filter(line -> line.startsWith(series + " "))
                .mapToDouble(line -> Double.parseDouble(line.substring(series.length() + 1).strip()))
                .findFirst().orElseThrow(() -> new AssertionError(series + " is not scraped"));
    }
}
