package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.post;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A streamed vLLM batch: one call, chunks of all prompts interleaved and routed by index, counts from the chunks. */
class VllmStreamingTest {

    private static final String MODEL = "Qwen/Qwen2.5-1.5B-Instruct";
    private final FakeVllm vllm = new FakeVllm(MODEL);
    private final OpenAiWorker worker = new OpenAiWorker(
            new WorkerEndpoint(vllm.url(), Duration.ofSeconds(5), Duration.ofSeconds(20)), MODEL);

    @AfterEach
    void stop() {
        worker.close();
        vllm.close();
    }

    @Test
    void aStreamedBatchIsOneCallWhosePiecesReachTheirPromptsInOrderWithTheWholeCounts() {
        var progress = new OllamaWorkerTest.RecordingProgress(3);
        List<String> prompts = List.of("alpha beta", "gamma delta epsilon", "zeta");

        var outcomes = worker.complete(new Batch(1, new GenerationParameters(8), prompts), progress);

        assertThat(vllm.calls()).containsExactly(prompts);
        for (int i = 0; i < 3; i++) {
            String prompt = prompts.get(i);
            assertThat(progress.texts.get(i)).hasSizeGreaterThan(1).allSatisfy(piece -> assertThat(piece).hasSizeLessThanOrEqualTo(FakeVllm.PIECE));
            assertThat(String.join("", progress.texts.get(i))).isEqualTo(prompt.toUpperCase());
            var counts = new TokenUsage(FakeVllm.promptTokens(prompt), FakeVllm.completionTokens(prompt, 8));
            assertThat(progress.counts.get(i)).isEqualTo(counts);
            assertThat(outcomes.get(i)).isInstanceOfSatisfying(WorkerOutcome.Generated.class, generated -> {
                assertThat(generated.text()).isEqualTo(prompt.toUpperCase());
                assertThat(generated.usage()).isEqualTo(counts);
            });
        }
    }

    @Test
    void anErrorEventAfterTheStreamBeganFailsTheBatchAsABadAnswer() {
        var progress = new OllamaWorkerTest.RecordingProgress(2);

        assertThatThrownBy(() -> worker.complete(
                new Batch(1, new GenerationParameters(8), List.of("fine prompt", "bad " + FakeVllm.GENERATION_ERROR)), progress))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessageContaining("The generation failed");
        assertThat(progress.texts.get(0)).isNotEmpty();
        assertThat(progress.counts.get(0)).as("counted before the failure").isNotNull();
    }

    @Test
    void onceNobodyWaitsTheStreamIsLeftAndEachPromptHasWhatWasCounted() {
        // Given callers who all leave after the first piece
        var progress = new OllamaWorkerTest.RecordingProgress(2) {
            @Override
            public boolean text(int prompt, String delta) {
                super.text(prompt, delta);
                return false;
            }
        };

        var outcomes = worker.complete(new Batch(1, new GenerationParameters(8),
                List.of("abcdefghijkl first", "mnopqrstuvwx second")), progress);

        // Then the worker read no further than that piece: one prompt has it and its count so far, the other nothing
        assertThat(progress.texts.get(1)).hasSize(1);
        assertThat(progress.texts.get(0)).isEmpty();
        assertThat(outcomes.get(1)).isInstanceOfSatisfying(WorkerOutcome.Generated.class,
                generated -> assertThat(generated.usage().completionTokens()).isLessThan(8));
        assertThat(outcomes.get(0)).isInstanceOf(WorkerOutcome.Failed.class);
    }

    @Test
    void aBatchNobodyStreamsIsNotStreamed() {
        var outcomes = worker.complete(new Batch(1, new GenerationParameters(8), List.of("one two")), BatchProgress.IGNORED);

        assertThat(outcomes).singleElement().isInstanceOf(WorkerOutcome.Generated.class);
        assertThat(vllm.server().getAllServeEvents().getFirst().getRequest().getBodyAsString()).doesNotContain("stream");
    }

    @Test
    void aServerWithoutRunningCountsIsBilledByItsLastChunksUsageWhenTheCallHasOnePrompt() {
        // Given an OpenAI-compatible server that sends usage only once, summed, at the end of a stream
        var server = new WireMockServer(WireMockConfiguration.options().dynamicPort());
        server.start();
        try (var plain = new OpenAiWorker(new WorkerEndpoint(server.baseUrl(), Duration.ofSeconds(5), Duration.ofSeconds(20)), MODEL)) {
            server.stubFor(post("/v1/completions").willReturn(
                    aResponse().withHeader("Content-Type", "text/event-stream")
                            .withBody("""
                                    data: {"choices":[{"index":0,"text":"Hel","finish_reason":null}]}

                                    data: {"choices":[{"index":0,"text":"lo","finish_reason":"stop"}]}

                                    data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}

                                    data: [DONE]

                                    """)));
            var progress = new OllamaWorkerTest.RecordingProgress(1);

            // When one prompt streams through it
            var outcomes = plain.complete(new Batch(1, new GenerationParameters(8), List.of("say hello")), progress);

            // Then the text came in its pieces, and the call's usage is that prompt's count
            assertThat(progress.texts.getFirst()).containsExactly("Hel", "lo");
            assertThat(outcomes).singleElement().isEqualTo(
                    new WorkerOutcome.Generated("Hello", new TokenUsage(3, 2), FinishReason.STOP));
        } finally {
            server.stop();
        }
    }
}
