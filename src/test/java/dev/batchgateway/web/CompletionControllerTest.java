package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.batchgateway.budget.Budgets;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.budget.MemoryBudgetStore;
import dev.batchgateway.budget.Window;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.Completions;
import dev.batchgateway.completion.DeadlineExceededException;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.SchedulerPolicy;
import dev.batchgateway.completion.ChatTemplate;
import dev.batchgateway.completion.ModelContext;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.TokenCeilings;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.identity.AdminTokens;
import dev.batchgateway.identity.Callers;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import java.io.IOException;
import java.time.Clock;
import java.util.List;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.webmvc.test.autoconfigure.WebMvcTest;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.mock.web.MockAsyncContext;
import org.springframework.test.web.servlet.assertj.MockMvcTester;
import org.springframework.test.web.servlet.assertj.MvcTestResult;

@WebMvcTest(controllers = CompletionController.class, properties = {"gateway.worker.type=simulated", "gateway.max-prompt-chars=100"})
@Import({CompletionControllerTest.Doubles.class, JsonLimits.class})
class CompletionControllerTest {

    @TestConfiguration
    @EnableConfigurationProperties(WebSettings.class)
    static class Doubles {
        /** The simulation, the default model when the worker type is simulated. */
        @Bean
        SchedulerPolicy schedulerPolicy() {
            return new SchedulerPolicy(8, java.time.Duration.ofMillis(20), 32, 10_000, java.time.Duration.ofSeconds(120),
                    java.time.Duration.ofSeconds(60));
        }

        @Bean
        ServedModels servedModels() {
            return new ServedModels(List.of("simulated"), 32);
        }

        @Bean
        StubScheduler scheduler() {
            return new StubScheduler();
        }

        @Bean
        MemoryBudgetStore budgetStore() {
            return new MemoryBudgetStore();
        }

        /** No limits but those a test sets: budgets have their own tests, this slice maps their refusals to HTTP. */
        @Bean
        Budgets budgets(MemoryBudgetStore store) {
            return new Budgets(store, Limits.NONE, Clock.systemUTC(), Budgets.Timing.DEFAULT);
        }

        @Bean
        Completions completions(Budgets budgets, StubScheduler scheduler) {
            return new Completions(budgets, scheduler);
        }

        /** The simulation's context as a server would report it: 2,048 tokens, no cap (GATEWAY_MAX_TOKENS unset). */
        @Bean
        TokenCeilings tokenCeilings(WebSettings settings) {
            return new TokenCeilings(settings.tokenCap(), model -> ModelContext.of(2048, false, new ChatTemplate(0, 0)));
        }

        /** Keys off (GATEWAY_AUTH=none): this slice is about reading bodies; identity has its own tests. */
        @Bean
        Callers callers() {
            return new Callers(null, AdminTokens.none(), false);
        }
    }

    @Autowired
    MockMvcTester mvc;

    @Autowired
    StubScheduler scheduler;

    @Autowired
    Budgets budgets;

    @Autowired
    MemoryBudgetStore budgetStore;

    @BeforeEach
    void reset() {
        scheduler.reset();
    }

    @Test
    void aValidRequestIsAnsweredWithItsCompletionAndCounts() {
        // When a prompt is posted
        var result = post("""
                {"prompt": "hello", "user_id": 42, "max_tokens": 64}""");

        // Then the scheduler got it, and the caller gets its completion and token counts
        assertThat(result).hasStatusOk().hasContentType(MediaType.APPLICATION_JSON);
        var request = scheduler.requests.getFirst();
        assertThat(request.userId()).isEqualTo(42);
        assertThat(request.prompt()).isEqualTo(new Prompt.Text("hello"));
        assertThat(request.parameters().maxTokens()).isEqualTo(64);
        assertThat(result).bodyJson().isLenientlyEqualTo("""
                {"completion": "echo: hello", "prompt_tokens": 5, "completion_tokens": 64, "tokens": 69,
                 "finish_reason": "stop", "request_id": "%s"}""".formatted(request.requestId()));
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', textBlock = """
                                      | default
            "service_tier": null,     | default
            "service_tier": "auto",   | default
            "service_tier": "default",| default
            "service_tier": "flex",   | flex
            """)
    void theRequestRunsInTheTierItNamesAutoOrNoneIsTheDefaultWithoutAKeyAndTheAnswerSaysWhich(String field, String tier) {
        // When a prompt names a tier, auto, or none (keys off: no key's tier to fall back on)
        var result = post("""
                {"prompt": "hello", %s "user_id": 42}""".formatted(field == null ? "" : field));

        // Then the scheduler got it in that tier, and the answer carries the tier it ran in
        assertThat(result).hasStatusOk();
        assertThat(scheduler.requests.getFirst().serviceTier().wireName()).isEqualTo(tier);
        assertThat(result).bodyJson().extractingPath("$.service_tier").isEqualTo(tier);
    }

    @Test
    void maxTokensUpToTheModelsContextIsAccepted() {
        // Given the model's context of 2,048 tokens and no operator cap
        // When a request asks for 1,024, and one for all 2,048
        assertThat(post("""
                {"prompt": "hello", "user_id": 1, "max_tokens": 1024}""")).hasStatusOk();
        assertThat(post("""
                {"prompt": "hello", "user_id": 1, "max_tokens": 2048}""")).hasStatusOk();

        // Then both reach the scheduler as asked
        assertThat(scheduler.requests).extracting(request -> request.parameters().maxTokens()).containsExactly(1024, 2048);
    }

    @Test
    void maxTokensDefaultsTo256OnComplete() {
        assertThat(post("""
                {"prompt": "hello", "user_id": 1}""")).hasStatusOk();
        assertThat(scheduler.requests.getFirst().parameters().maxTokens()).isEqualTo(256);
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', textBlock = """
            {"prompt": "hi", "user_id": 42                   | not valid JSON
            [1, 2]                                           | must be a JSON object
            {"user_id": 42}                                  | prompt is required
            {"prompt": null, "user_id": 42}                  | prompt is required
            {"prompt": "   ", "user_id": 42}                 | prompt must not be blank
            {"prompt": 12, "user_id": 42}                    | prompt must be a JSON string
            {"prompt": ["hi"], "user_id": 42}                | prompt must be a JSON string
            {"prompt": "hi"}                                 | user_id is required
            {"prompt": "hi", "user_id": "42"}                | user_id must be a JSON integer
            {"prompt": "hi", "user_id": 1.5}                 | user_id must be a JSON integer
            {"prompt": "hi", "user_id": 42.0}                | user_id must be a JSON integer
            {"prompt": "hi", "user_id": true}                | user_id must be a JSON integer
            {"prompt": "hi", "user_id": 0}                   | user_id must be between 1 and
            {"prompt": "hi", "user_id": -7}                  | user_id must be between 1 and
            {"prompt": "hi", "user_id": 9223372036854775808} | user_id must be between 1 and
            {"prompt": "hi", "user_id": 1, "max_tokens": 0}  | max_tokens must be at least 1, was 0
            {"prompt": "hi", "user_id": 1, "max_tokens": 2049}| max_tokens is 2049, more than 2048: the context of model simulated is 2048 tokens, as its server reports it; send at most 2048
            {"prompt": "hi", "user_id": 1, "max_tokens": 99999999999999999999}| max_tokens is 99999999999999999999, more than 2048
            {"prompt": "hi", "user_id": 1, "max_tokens": "8"}| max_tokens must be a JSON integer
            {"prompt": "hi", "user_id": 1, "max_tokens": 2.5}| max_tokens must be a JSON integer
            {"prompt": "hi", "user_id": 1, "stream": "yes"}  | stream must be true or false
            {"prompt": "hi", "user_id": 1, "temperature": 0} | temperature is not supported
            {"prompt": "hi", "user_id": 1, "userid": 2}      | userid is not supported
            {"prompt": "hi", "user_id": 1, "service_tier": "priority"} | service_tier must be "auto", "default" or "flex"
            {"prompt": "hi", "user_id": 1, "service_tier": "Flex"}     | service_tier must be "auto", "default" or "flex"
            {"prompt": "hi", "user_id": 1, "service_tier": ""}         | service_tier must be "auto", "default" or "flex"
            {"prompt": "hi", "user_id": 1, "service_tier": 1}          | service_tier must be "auto", "default" or "flex"
            {"prompt": "hi", "user_id": 1, "service_tier": ["flex"]}   | service_tier must be "auto", "default" or "flex"
            """)
    void aBadBodyIsA400NamingTheField(String body, String detail) {
        var result = post(body);

        assertProblem(result, HttpStatus.BAD_REQUEST, detail);
        assertThat(scheduler.requests).isEmpty();
    }

    @Test
    void aPromptOverTheLimitIsA400() {
        assertProblem(post("""
                {"prompt": "%s", "user_id": 1}""".formatted("x".repeat(101))),
                HttpStatus.BAD_REQUEST, "prompt is longer than 100 characters");
        assertThat(post("""
                {"prompt": "%s", "user_id": 1}""".formatted("😀".repeat(100)))).hasStatusOk();
    }

    @Test
    void anEmptyBodyIsA400() {
        assertProblem(mvc.post().uri("/complete").contentType(MediaType.APPLICATION_JSON).exchange(),
                HttpStatus.BAD_REQUEST, "request body is missing");
    }

    @Test
    void aBodyOverOneMebibyteIsA413() {
        String big = "{\"prompt\": \"" + "x".repeat(1024 * 1024) + "\", \"user_id\": 1}";
        assertProblem(post(big), HttpStatus.CONTENT_TOO_LARGE, "larger than 1048576 bytes");
    }

    @ParameterizedTest
    @ValueSource(strings = {MediaType.TEXT_PLAIN_VALUE, MediaType.APPLICATION_FORM_URLENCODED_VALUE, MediaType.APPLICATION_XML_VALUE})
    void aBodyThatIsNotJsonIsA415(String contentType) {
        var result = mvc.post().uri("/complete").contentType(contentType).content("prompt=hi").exchange();
        assertProblem(result, HttpStatus.UNSUPPORTED_MEDIA_TYPE, "-H 'Content-Type: application/json'");
    }

    @Test
    void theWrongMethodIsA405() {
        assertProblem(mvc.get().uri("/complete").exchange(), HttpStatus.METHOD_NOT_ALLOWED, "");
    }

    @Test
    void aFullQueueIsA503WithRetryAfter() {
        scheduler.rejectWith(new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofSeconds(3)));

        var result = post("""
                {"prompt": "hi", "user_id": 1}""");

        assertProblem(result, HttpStatus.SERVICE_UNAVAILABLE, "the queue is full");
        assertThat(result).hasHeader("Retry-After", "3");
    }

    @Test
    void flexBeyondItsHalfOfTheQueueIsA429WithRetryAfter() {
        scheduler.rejectWith(new CompletionRejectedException(CompletionRejectedException.Reason.FLEX_QUEUE_FULL, Duration.ofSeconds(2)));

        var result = post("""
                {"prompt": "hi", "user_id": 1}""");

        assertProblem(result, HttpStatus.TOO_MANY_REQUESTS, "the flex tier's half of the queue is full");
        assertThat(result).hasHeader("Retry-After", "2");
    }

    @Test
    void aShuttingDownGatewayIsA503WithRetryAfter() {
        scheduler.rejectWith(new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, Duration.ofSeconds(1)));

        var result = post("""
                {"prompt": "hi", "user_id": 1}""");

        assertProblem(result, HttpStatus.SERVICE_UNAVAILABLE, "shutting down");
        assertThat(result).hasHeader("Retry-After", "1");
    }

    @Test
    void overAUsersLimitIsA429NamingTheLimitBeforeTheSchedulerSeesAnything() {
        // Given a user whose day allows one request as it reserves 2 + 16 + 256 tokens (the stub never settles it)
        budgets.setLimits(77, new Limits(300L, null, null));
        assertThat(post("""
                {"prompt": "hi", "user_id": 77}""")).hasStatusOk();

        // When a second one comes
        var result = post("""
                {"prompt": "hi", "user_id": 77}""");

        // Then it is refused with the limit's fields, and the scheduler never saw it
        assertProblem(result, HttpStatus.TOO_MANY_REQUESTS, "tokens_per_day is 300");
        assertThat(result).containsHeader("Retry-After");
        assertThat(result).bodyJson().extractingPath("$.limit").isEqualTo("tokens_per_day");
        assertThat(result).bodyJson().extractingPath("$.limit_value").isEqualTo(300);
        assertThat(result).bodyJson().extractingPath("$.remaining").isEqualTo(26);
        assertThat(result).bodyJson().extractingPath("$.requested").isEqualTo(274);
        assertThat(result).bodyJson().extractingPath("$.resets_at").asString().endsWith("T00:00:00Z");
        assertThat(scheduler.requests).hasSize(1);
    }

    @Test
    void aLimitedUserWithoutBudgetHeldWhileTheBudgetStoreIsAwayIsA503() {
        budgets.setLimits(78, new Limits(1000L, null, null));
        budgetStore.away = true;
        try {
            var result = post("""
                    {"prompt": "hi", "user_id": 78}""");

            assertProblem(result, HttpStatus.SERVICE_UNAVAILABLE, "the budget store is unavailable");
            assertThat(result).hasHeader("Retry-After", "5");
            assertThat(scheduler.requests).isEmpty();
        } finally {
            budgetStore.away = false;
        }
    }

    @Test
    void aRequestTheSchedulerDoesNotTakeGivesItsReservationBack() {
        // Given a user allowed one request in flight at a time, and a full queue
        budgets.setLimits(79, new Limits(300L, null, null));
        scheduler.rejectWith(new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofSeconds(1)));
        assertProblem(post("""
                {"prompt": "hi", "user_id": 79}"""), HttpStatus.SERVICE_UNAVAILABLE, "the queue is full");

        // When the queue has room again
        scheduler.rejectWith(null);

        // Then the refused request holds nothing: the next one fits
        assertThat(post("""
                {"prompt": "hi", "user_id": 79}""")).hasStatusOk();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
            "{\"prompt\": \"hi\", \"user_id\": 81, \"stream\": \"yes\"}",
            "{\"prompt\": \"hi\", \"user_id\": 81, \"stream\": 1}",
            "{\"prompt\": \"hi\", \"user_id\": 81, \"max_tokens\": 0}",
            "{\"prompt\": \"hi\", \"user_id\": 81, \"temperature\": 0}"})
    void aRequestRefusedForItsBodyReservesNothing(String body) {
        // Given a limited user
        budgets.setLimits(81, new Limits(300L, null, 10L));

        // When a request of theirs is refused for what its body says
        assertProblem(post(body), HttpStatus.BAD_REQUEST, "");

        // Then it holds nothing: the whole limit remains, nothing is reserved, and the scheduler never saw it
        var standing = budgets.standing(81);
        assertThat(standing.reserved()).containsEntry(Window.DAY, 0L).containsEntry(Window.MINUTE, 0L);
        assertThat(standing.remaining()).containsEntry(Window.DAY, 300L).containsEntry(Window.MINUTE, 10L);
        assertThat(scheduler.requests).isEmpty();
    }

    @Test
    void anUnreachableWorkerIsA503WithRetryAfter() {
        scheduler.failWith(new WorkerException.Unavailable("connection refused"));

        var result = post("""
                {"prompt": "hi", "user_id": 1}""");

        assertProblem(result, HttpStatus.SERVICE_UNAVAILABLE, "the worker is unavailable");
        assertThat(result).containsHeader("Retry-After");
    }

    @Test
    void aWorkerErrorOrNonsenseIsA502() {
        scheduler.failWith(new WorkerException.BadAnswer("the worker answered status 500"));

        assertProblem(post("""
                {"prompt": "hi", "user_id": 1}"""), HttpStatus.BAD_GATEWAY, "the worker answered status 500");
    }

    @Test
    void aWorkerTimeoutIsA504() {
        scheduler.failWith(new WorkerException.TimedOut("the worker did not answer within 1000 ms"));

        assertProblem(post("""
                {"prompt": "hi", "user_id": 1}"""), HttpStatus.GATEWAY_TIMEOUT, "did not answer within 1000 ms");
    }

    @Test
    void aPassedRequestDeadlineIsA504() {
        scheduler.failWith(new DeadlineExceededException(Duration.ofSeconds(120)));

        assertProblem(post("""
                {"prompt": "hi", "user_id": 1}"""), HttpStatus.GATEWAY_TIMEOUT, "not completed within 120000 ms");
    }

    @ParameterizedTest(name = "Request-Timeout: {0} -> {1} ms")
    @CsvSource({"2, 2000", "0.5, 500", "1.250, 1250", "' 3 ', 3000", "999999999, 999999999000"})
    void requestTimeoutSetsTheCallersDeadlineInSeconds(String header, long millis) {
        var result = mvc.post().uri("/complete").contentType(MediaType.APPLICATION_JSON).header("Request-Timeout", header)
                .content("""
                        {"prompt": "hi", "user_id": 1}""").exchange();

        assertThat(result).hasStatusOk();
        assertThat(scheduler.timeouts).containsExactly(Duration.ofMillis(millis));
    }

    @Test
    void withoutRequestTimeoutTheGatewaysOwnTimeoutApplies() {
        assertThat(post("""
                {"prompt": "hi", "user_id": 1}""")).hasStatusOk();
        // the scheduler takes the shorter of this and GATEWAY_REQUEST_TIMEOUT
        assertThat(scheduler.timeouts.getFirst()).isGreaterThan(Duration.ofDays(365));
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "0.000", "-1", "1.5s", "abc", "1e3", "0.0001", "1,5", "10000000000"})
    void aMalformedRequestTimeoutIsA400(String header) {
        var result = mvc.post().uri("/complete").contentType(MediaType.APPLICATION_JSON).header("Request-Timeout", header)
                .content("""
                        {"prompt": "hi", "user_id": 1}""").exchange();

        assertProblem(result, HttpStatus.BAD_REQUEST, "Request-Timeout");
        assertThat(scheduler.requests).isEmpty();
    }

    @Test
    void aNonUtf8CharsetIsA415() {
        var result = mvc.post().uri("/complete").contentType("application/json;charset=ISO-8859-1").content("""
                {"prompt": "hi", "user_id": 1}""").exchange();

        assertProblem(result, HttpStatus.UNSUPPORTED_MEDIA_TYPE, "must be UTF-8");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            // Spring checks the charset while parsing the Content-Type, before the mapping: an unknown one is a 415
            "application/json;charset=no-such-charset | 415",
            // a known charset that is not UTF-8 reaches the controller's own check
            "application/json;charset=UTF-16 | 415",
            // an empty parameter is no parameter: plain JSON, served
            "application/json;; | 200"})
    void anOddContentTypeGetsAnExactStatus(String contentType, int status) {
        var result = mvc.post().uri("/complete").header("Content-Type", contentType).content("""
                {"prompt": "hi", "user_id": 1}""").exchange();

        assertThat(result).hasStatus(status);
        if (status >= 400) {
            assertThat(result).hasContentType(MediaType.APPLICATION_PROBLEM_JSON);
        }
    }

    @Test
    void aPromptWithALoneSurrogateIsA400() {
        assertProblem(post("""
                {"prompt": "a\\ud800b", "user_id": 1}"""), HttpStatus.BAD_REQUEST, "unpaired surrogate");
        assertThat(post("""
                {"prompt": "\\ud83d\\ude00", "user_id": 1}""")).hasStatusOk();
    }

    @Test
    void aDuplicateFieldIsA400() {
        assertProblem(post("""
                {"prompt": "hi", "prompt": "again", "user_id": 1}"""), HttpStatus.BAD_REQUEST, "not valid JSON");
    }

    @Test
    void nestingBeyondTheLimitIsA400() {
        String deep = "[".repeat(JsonLimits.MAX_NESTING_DEPTH + 1) + "]".repeat(JsonLimits.MAX_NESTING_DEPTH + 1);
        assertProblem(post("""
                {"prompt": "hi", "user_id": 1, "extra": %s}""".formatted(deep)), HttpStatus.BAD_REQUEST, "not valid JSON");
    }

    @Test
    void aNumberLongerThanTheLimitIsA400() {
        assertProblem(post("""
                {"prompt": "hi", "user_id": %s}""".formatted("9".repeat(JsonLimits.MAX_NUMBER_LENGTH + 1))),
                HttpStatus.BAD_REQUEST, "not valid JSON");
    }

    @Test
    void healthSaysOk() {
        assertThat(mvc.get().uri("/health").exchange()).hasStatusOk().hasBodyTextEqualTo("ok");
    }

    @Test
    void aRequestTheContainerGivesUpIsCancelledAtTheScheduler() throws Exception {
        // Given a request the scheduler holds unanswered, no thread waiting for its answer
        scheduler.hold();
        var result = mvc.post().uri("/complete").contentType(MediaType.APPLICATION_JSON).content("""
                {"prompt": "hello", "user_id": 42}""").asyncExchange();
        var pending = scheduler.held.getFirst();
        assertThat(pending).isNotDone();

        // When the container gives the request up (its connection failed)
        var container = (MockAsyncContext) result.getMvcResult().getRequest().getAsyncContext();
        for (AsyncListener listener : container.getListeners()) {
            listener.onError(new AsyncEvent(container, new IOException("connection reset")));
        }

        // Then the request is cancelled, so the scheduler drops it before its batch leaves
        assertThat(pending).isCancelled();
    }

    @Test
    void aRequestStillWaitingIsNotCancelled() throws Exception {
        scheduler.hold();
        var answered = new AtomicReference<MvcTestResult>();
        var waiting = Thread.ofVirtual().start(() -> answered.set(post("""
                {"prompt": "hello", "user_id": 42}""")));
        await().atMost(Duration.ofSeconds(30)).until(() -> !scheduler.held.isEmpty());
        Thread.sleep(200); // the request thread waits; nothing gives its request up meanwhile
        var pending = scheduler.held.getFirst();
        assertThat(pending).isNotDone();

        pending.complete(new Completion(scheduler.requests.getFirst().requestId(), "late", new TokenUsage(1, 1), FinishReason.STOP));
        waiting.join(Duration.ofSeconds(30));
        assertThat(answered.get()).hasStatusOk().bodyJson().extractingPath("$.completion").isEqualTo("late");
    }

    private MvcTestResult post(String body) {
        return mvc.post().uri("/complete").contentType(MediaType.APPLICATION_JSON).content(body).exchange();
    }

    private static void assertProblem(MvcTestResult result, HttpStatus status, String detail) {
        assertThat(result).hasStatus(status).hasContentType(MediaType.APPLICATION_PROBLEM_JSON);
        assertThat(result).bodyJson().extractingPath("$.status").isEqualTo(status.value());
        assertThat(result).bodyJson().extractingPath("$.detail").asString().contains(detail);
        assertThat(result).body().asString().doesNotContain("Exception", "\tat ");
    }
}
