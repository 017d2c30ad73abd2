package dev.batchgateway.worker;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.matchingJsonPath;
import static com.github.tomakehurst.wiremock.client.WireMock.post;
import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The Ollama adapter when a caller streams: one streamed call per prompt, its JSON lines handed on as they come. */
class OllamaStreamingTest {

    private final WireMockServer ollama = new WireMockServer(WireMockConfiguration.options().dynamicPort());
    private OllamaWorker worker;
    private final StreamedTexts progress = new StreamedTexts();

    @BeforeEach
    void start() {
        ollama.start();
        worker = new OllamaWorker(new WorkerEndpoint(ollama.baseUrl(), Duration.ofSeconds(5), Duration.ofSeconds(20)), "llama3.2:1b");
    }

    @AfterEach
    void stop() {
        worker.close();
        ollama.stop();
    }

    @Test
    void eachPromptIsOneStreamedCallWhoseLinesReachItsPosition() {
        // Given a server that streams its answer to each prompt in two pieces
        for (String prompt : List.of("one", "two")) {
            ollama.stubFor(post(urlEqualTo("/api/generate"))
                    .withRequestBody(matchingJsonPath("$.prompt", com.github.tomakehurst.wiremock.client.WireMock.equalTo(prompt)))
                    .withRequestBody(matchingJsonPath("$.stream", com.github.tomakehurst.wiremock.client.WireMock.equalTo("true")))
                    .willReturn(lines(
                            "{\"response\":\"" + prompt + "-a\",\"done\":false}",
                            "{\"response\":\"" + prompt + "-b\",\"done\":false}",
                            "{\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":3,\"eval_count\":2}")));
        }

        // When a batch of the two is completed for a streaming caller
        var outcomes = worker.complete(new Batch(1, new GenerationParameters(8), List.of("one", "two")), progress);

        // Then each prompt's pieces reached its position, and each outcome is whole
        assertThat(progress.texts).containsExactly(Map.entry(0, "one-aone-b"), Map.entry(1, "two-atwo-b"));
        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("one-aone-b", new TokenUsage(3, 2), FinishReason.STOP),
                new WorkerOutcome.Generated("two-atwo-b", new TokenUsage(3, 2), FinishReason.STOP));
        assertThat(ollama.findAll(postRequestedFor(urlEqualTo("/api/generate")))).hasSize(2);
        assertThat(worker.model()).isEqualTo("llama3.2:1b");
    }

    @Test
    void aChatIsStreamedFromTheChatEndpoint() {
        ollama.stubFor(post(urlEqualTo("/api/chat")).willReturn(lines(
                "{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}",
                "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":5,\"eval_count\":1}")));
        var chat = new Prompt.Chat(List.of(new Prompt.Message("user", "hello")));

        var outcomes = worker.complete(Batch.ofChats(1, new GenerationParameters(1), List.of(chat)), progress);

        assertThat(outcomes).containsExactly(new WorkerOutcome.Generated("Hi", new TokenUsage(5, 1), FinishReason.LENGTH));
        assertThat(progress.texts).containsExactly(Map.entry(0, "Hi"));
    }

    @Test
    void aRefusedStreamedCallIsTheCallersFault() {
        ollama.stubFor(post(urlEqualTo("/api/generate")).willReturn(aResponse().withStatus(400)
                .withHeader("Content-Type", "application/json").withBody("{\"error\":\"prompt too long\"}")));

        assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(8), List.of("x")), progress))
                .isInstanceOf(WorkerException.Rejected.class).hasMessage("prompt too long");
    }

    @Test
    void aBatchNobodyStreamsIsAskedWholeAndReportedOnceDone() {
        ollama.stubFor(post(urlEqualTo("/api/generate")).willReturn(aResponse().withStatus(200)
                .withHeader("Content-Type", "application/json")
                .withBody("{\"response\":\"whole\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":2,\"eval_count\":1}")));
        var whole = new StreamedTexts(false);

        var outcomes = worker.complete(new Batch(1, new GenerationParameters(8), List.of("x")), whole);

        assertThat(outcomes).containsExactly(new WorkerOutcome.Generated("whole", new TokenUsage(2, 1), FinishReason.STOP));
        assertThat(whole.texts).containsExactly(Map.entry(0, "whole"));
        assertThat(ollama.findAll(postRequestedFor(urlEqualTo("/api/generate")))).singleElement()
                .satisfies(request -> assertThat(request.getBodyAsString()).contains("\"stream\":false"));
    }

    @Test
    void aClosedWorkerCallsNoMore() {
        ollama.stubFor(post(urlEqualTo("/api/generate")).willReturn(lines(
                "{\"response\":\"x\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":1,\"eval_count\":1}")));
        worker.close();

        assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(8), List.of("after close")), progress))
                .isInstanceOf(WorkerException.class);
        assertThat(ollama.findAll(postRequestedFor(urlEqualTo("/api/generate")))).isEmpty();
    }

    private static com.github.tomakehurst.wiremock.client.ResponseDefinitionBuilder lines(String... lines) {
        return aResponse().withStatus(200).withHeader("Content-Type", "application/x-ndjson")
                .withBody(String.join("\n", lines) + "\n");
    }
}
