package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.budget.Budgets;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.budget.MemoryBudgetStore;
import dev.batchgateway.completion.CallerPresence;
import dev.batchgateway.completion.ChatTemplate;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.Completions;
import dev.batchgateway.completion.Deltas;
import dev.batchgateway.completion.ModelContext;
import dev.batchgateway.completion.SchedulerPolicy;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.TokenCeilings;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.identity.AdminTokens;
import dev.batchgateway.identity.Callers;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.webmvc.test.autoconfigure.WebMvcTest;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.http.MediaType;
import org.springframework.test.web.servlet.assertj.MockMvcTester;
import org.springframework.test.web.servlet.assertj.MvcTestResult;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code /v1/responses} in front of a scheduler double: the answer's fields as OpenAI sends them, and what becomes of a
 * failure before a stream's first event (an ordinary error answer) and after it (OpenAI's error events).
 */
@WebMvcTest(controllers = {OpenAiController.class, ResponsesController.class},
        properties = {"gateway.worker.type=simulated", "gateway.max-tokens=256", "gateway.max-prompt-chars=100"})
@Import({ResponsesControllerTest.Doubles.class, JsonLimits.class})
class ResponsesControllerTest {

    private static final long SLACK_MILLIS = 10_000;

    /** Gives half an answer, then fails as a worker that went away in the middle of it, when told to. */
    static final class MidStreamSaboteur extends StubScheduler {
        volatile String breakAfter;

        @Override
        public CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout, CallerPresence caller, Deltas deltas) {
            if (breakAfter == null) {
                return super.submit(request, timeout, caller, deltas);
            }
            requests.add(request);
            deltas.text(breakAfter);
            return CompletableFuture.failedFuture(new WorkerException.Unavailable("the worker went away mid-answer"));
        }
    }

    @TestConfiguration
    @EnableConfigurationProperties(WebSettings.class)
    static class Doubles {
        @Bean
        SchedulerPolicy schedulerPolicy() {
            return new SchedulerPolicy(8, Duration.ofMillis(20), 32, 10_000, Duration.ofSeconds(120), Duration.ofSeconds(60));
        }

        @Bean
        ServedModels servedModels() {
            return new ServedModels(List.of("simulated"), 32);
        }

        @Bean
        MidStreamSaboteur scheduler() {
            return new MidStreamSaboteur();
        }

        @Bean
        Completions completions(MidStreamSaboteur scheduler) {
            return new Completions(new Budgets(new MemoryBudgetStore(), Limits.NONE, Clock.systemUTC(), Budgets.Timing.DEFAULT),
                    scheduler);
        }

        /** A context of 4,096 tokens, as the simulated worker reports, no chat template to allow for, no cap. */
        @Bean
        TokenCeilings tokenCeilings(WebSettings settings) {
            return new TokenCeilings(settings.tokenCap(), model -> ModelContext.of(4096, false, new ChatTemplate(0, 0)));
        }

        /** Keys off (GATEWAY_AUTH=none): the body's {@code user} names whom to bill. */
        @Bean
        Callers callers() {
            return new Callers(null, AdminTokens.none(), false);
        }
    }

    @Autowired
    MockMvcTester mvc;

    @Autowired
    MidStreamSaboteur scheduler;

    private final JsonMapper json = JsonMapper.builder().build();

    @BeforeEach
    void reset() {
        scheduler.reset();
        scheduler.breakAfter = null;
    }

    @Test
    void theAnswerHasOpenAisFieldsWithItsNullsAndTheChatWentToTheSchedulerForTheUserNamed() throws Exception {
        var result = post("""
                {"model": "simulated", "input": "hello", "user": "42", "max_output_tokens": 5}""");

        assertThat(result).hasStatusOk().hasContentType(MediaType.APPLICATION_JSON);
        assertThat(scheduler.requests).singleElement().satisfies(request -> {
            assertThat(request.userId()).isEqualTo(42);
            assertThat(request.parameters().maxTokens()).isEqualTo(5);
        });
        JsonNode response = json.readTree(result.getResponse().getContentAsString());
        assertThat(response.propertyNames()).containsExactlyInAnyOrder("id", "object", "created_at", "status", "background",
                "error", "incomplete_details", "instructions", "max_output_tokens", "max_tool_calls", "model", "output",
                "parallel_tool_calls", "previous_response_id", "reasoning", "service_tier", "store", "temperature", "text",
                "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "usage", "user", "metadata");
        assertThat(response.get("object").asString()).isEqualTo("response");
        assertThat(response.get("error").isNull()).isTrue();
        assertThat(response.get("store").asBoolean()).isFalse();
        assertThat(response.at("/output/0/content/0").propertyNames())
                .containsExactlyInAnyOrder("type", "text", "annotations", "logprobs");
        assertThat(response.at("/output/0/content/0/text").asString()).isEqualTo("echo: hello");
        assertThat(response.get("usage").propertyNames()).containsExactlyInAnyOrder("input_tokens", "input_tokens_details",
                "output_tokens", "output_tokens_details", "total_tokens");
    }

    @Test
    void withoutKeysAResponseThatNamesNoUserToBillIs400NamingUser() throws Exception {
        var result = post("""
                {"model": "simulated", "input": "hello"}""");

        assertThat(result).hasStatus(400).hasContentType(MediaType.APPLICATION_JSON);
        assertThat(json.readTree(result.getResponse().getContentAsString()).at("/error/param").asString()).isEqualTo("user");
        assertThat(scheduler.requests).isEmpty();
    }

    @Test
    void aRefusalBeforeTheStreamBeganIsAnOrdinaryErrorAnswer() throws Exception {
        scheduler.rejectWith(new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofSeconds(3)));

        var result = post("""
                {"model": "simulated", "input": "hello", "user": "42", "stream": true}""");

        assertThat(result).hasStatus(503).hasContentType(MediaType.APPLICATION_JSON);
        assertThat(json.readTree(result.getResponse().getContentAsString()).at("/error/message").asString()).isNotBlank();
    }

    @Test
    void aFailureAfterTheStreamBeganEndsItWithAnErrorEventAndTheFailedResponse() throws Exception {
        // Given a worker that goes away after the first piece of text
        scheduler.breakAfter = "half ";

        // When a response is streamed, and the stream it answers is written to its client
        var result = mvc.post().uri("/v1/responses").contentType(MediaType.APPLICATION_JSON).content("""
                {"model": "simulated", "input": "hello", "user": "42", "stream": true}""").asyncExchange();
        var client = new StreamClient(true);
        ((EventStream) result.getMvcResult().getAsyncResult(SLACK_MILLIS)).writeTo(client.connection());

        // Then the text that came is there, and the stream ends with OpenAI's error event and response.failed
        assertThat(client.response.getStatus()).isEqualTo(200);
        assertThat(client.completions).hasValue(1);
        List<JsonNode> events = client.read().lines().filter(line -> line.startsWith("data: "))
                .map(line -> json.readTree(line.substring("data: ".length()))).toList();
        assertThat(events).extracting(event -> event.get("type").asString()).containsExactly(
                "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
                "response.output_text.delta", "error", "response.failed");
        for (int i = 0; i < events.size(); i++) {
            assertThat(events.get(i).get("sequence_number").asInt()).isEqualTo(i);
        }
        JsonNode error = events.get(5);
        assertThat(error.get("message").asString()).contains("went away mid-answer");
        assertThat(error.get("code").asString()).isEqualTo("server_error");
        assertThat(error.at("/error/message").asString()).isEqualTo(error.get("message").asString());
        JsonNode failed = events.get(6).get("response");
        assertThat(failed.get("status").asString()).isEqualTo("failed");
        assertThat(failed.at("/error/code").asString()).isEqualTo("server_error");
        assertThat(failed.get("id").asString()).isEqualTo(events.getFirst().at("/response/id").asString());
    }

    private MvcTestResult post(String body) {
        return mvc.post().uri("/v1/responses").contentType(MediaType.APPLICATION_JSON).content(body).exchange();
    }
}
