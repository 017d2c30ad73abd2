package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The vLLM adapter when a caller streams: one streamed call per batch, demultiplexed by prompt, against FakeVllm. */
class VllmStreamedCallsTest {

    private static final String MODEL = "Qwen/Qwen2.5-1.5B-Instruct";
    private final FakeVllm vllm = new FakeVllm(MODEL);
    private final Map<String, Integer> resent = new ConcurrentHashMap<>();
    private final OpenAiWorker worker = new OpenAiWorker(
            new WorkerEndpoint(vllm.url(), Duration.ofSeconds(5), Duration.ofSeconds(20)), MODEL, Dialect.VLLM,
            (reason, prompts) -> resent.merge(reason, prompts, Integer::sum));
    private final StreamedTexts progress = new StreamedTexts(true);

    @AfterEach
    void stop() {
        worker.close();
        vllm.close();
    }

    @Test
    void aStreamedBatchIsOneCallWhosePiecesReachEachPromptAndEndAsItsOutcome() {
        // Given a batch of three prompts
        List<String> prompts = List.of("alpha one", "be two", "gamma three four");

        // When it is completed for a streaming caller
        var outcomes = worker.complete(new Batch(1, new GenerationParameters(16), prompts), progress);

        // Then one call streamed it, each prompt's pieces reached its position, and each outcome is whole and counted
        assertThat(vllm.calls()).hasSize(1);
        for (int i = 0; i < prompts.size(); i++) {
            String prompt = prompts.get(i);
            assertThat(progress.texts.get(i)).isEqualTo(prompt.toUpperCase());
            assertThat(outcomes.get(i)).isEqualTo(new WorkerOutcome.Generated(prompt.toUpperCase(),
                    new TokenUsage(FakeVllm.promptTokens(prompt), FakeVllm.completionTokens(prompt, 16)), FinishReason.STOP));
        }
        assertThat(resent).isEmpty();
    }

    @Test
    void aStreamedBatchOfOneIsOneCallOfThatPrompt() {
        var outcomes = worker.complete(new Batch(1, new GenerationParameters(16), List.of("lonely prompt")), progress);

        assertThat(vllm.calls()).hasSize(1);
        assertThat(outcomes).singleElement().isInstanceOfSatisfying(WorkerOutcome.Generated.class,
                generated -> assertThat(generated.text()).isEqualTo("LONELY PROMPT"));
        assertThat(progress.texts).containsExactly(Map.entry(0, "LONELY PROMPT"));
    }

    @Test
    void aStreamedListRefusedForOnePromptIsStreamedOnePromptPerCallAndOnlyThatOneFails() {
        // Given a server with a short context, and a batch whose second prompt is too long for it
        vllm.maxModelLen = 64;
        List<String> prompts = List.of("first prompt", "long ".repeat(60), "third prompt");

        // When it is completed for a streaming caller
        var outcomes = worker.complete(new Batch(1, new GenerationParameters(16), prompts), progress);

        // Then the refused list was sent again one prompt per call, and only the long one failed, as refused
        assertThat(vllm.calls()).hasSize(4);
        assertThat(resent).containsExactly(Map.entry("refused", 3));
        assertThat(outcomes.get(0)).isInstanceOf(WorkerOutcome.Generated.class);
        assertThat(outcomes.get(1)).isInstanceOfSatisfying(WorkerOutcome.Failed.class,
                failed -> assertThat(failed.cause()).isInstanceOf(WorkerException.Rejected.class));
        assertThat(outcomes.get(2)).isInstanceOf(WorkerOutcome.Generated.class);
        assertThat(progress.texts).containsOnlyKeys(0, 2);
    }

    @Test
    void aStreamThatReportsAnErrorFailsTheBatchWithTheServersMessage() {
        List<String> prompts = List.of("fine", "broken " + FakeVllm.GENERATION_ERROR);

        assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(16), prompts), progress))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker's stream failed: The generation failed");
        assertThat(resent).isEmpty();
    }

    @Test
    void aStreamedBatchOfChatsIsOneStreamedCallPerConversation() {
        var chats = List.of(
                new Prompt.Chat(List.of(new Prompt.Message("user", "hello there"))),
                new Prompt.Chat(List.of(new Prompt.Message("system", "brief"), new Prompt.Message("user", "bye now"))));

        var outcomes = worker.complete(Batch.ofChats(1, new GenerationParameters(16), chats), progress);

        assertThat(requests("/v1/chat/completions")).hasSize(2).allSatisfy(body -> assertThat(body).contains("\"stream\":true"));
        assertThat(outcomes).extracting(outcome -> ((WorkerOutcome.Generated) outcome).text())
                .containsExactly("HELLO THERE", "BYE NOW");
        assertThat(progress.texts).containsExactly(Map.entry(0, "HELLO THERE"), Map.entry(1, "BYE NOW"));
    }

    @Test
    void aBatchNobodyStreamsIsCompletedWholeAndReportedOnceDone() {
        var whole = new StreamedTexts(false);

        var outcomes = worker.complete(new Batch(1, new GenerationParameters(16), List.of("one prompt", "two prompts")), whole);

        assertThat(outcomes).extracting(outcome -> ((WorkerOutcome.Generated) outcome).text())
                .containsExactly("ONE PROMPT", "TWO PROMPTS");
        assertThat(whole.texts).containsExactly(Map.entry(0, "ONE PROMPT"), Map.entry(1, "TWO PROMPTS"));
        assertThat(requests("/v1/completions")).isNotEmpty().allSatisfy(body -> assertThat(body).doesNotContain("\"stream\""));
    }

    @Test
    void aClosedWorkerCallsNoMore() {
        worker.close();

        assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(16), List.of("after close"))))
                .isInstanceOf(WorkerException.class);
        assertThat(vllm.calls()).isEmpty();
    }

    private List<String> requests(String path) {
        return vllm.server().findAll(com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor(
                com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo(path))).stream()
                .map(request -> request.getBodyAsString()).toList();
    }
}
