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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The vLLM adapter against a fake that refuses and fails as vLLM does (FakeVllm): a whole list refused for one prompt,
 * a whole list failed for one generation, a key, a model, a strict server.
 */
class VllmServerBehaviourTest {

    private static final String MODEL = "Qwen/Qwen2.5-1.5B-Instruct";
    private final FakeVllm vllm = new FakeVllm(MODEL);
    private final Map<String, Integer> resent = new ConcurrentHashMap<>();
    private OpenAiWorker worker = worker(null);

    private OpenAiWorker worker(String apiKey) {
        return new OpenAiWorker(new WorkerEndpoint(vllm.url(), apiKey, Duration.ofSeconds(5), Duration.ofSeconds(20)), MODEL, Dialect.VLLM,
                (reason, prompts) -> resent.merge(reason, prompts, Integer::sum));
    }

    @AfterEach
    void stop() {
        worker.close();
        vllm.close();
    }

    private static List<String> eightPromptsWithTheFourthTooLong(int maxModelLen) {
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            prompts.add(i == 3 ? "long ".repeat(maxModelLen) : "prompt number " + i);
        }
        return prompts;
    }

    @Test
    void oneTooLongPromptInABatchOfEightFailsOnlyItselfWithVllmsMessageAndTheOtherSevenAreAnswered() {
        // Given a model with a context of 64 tokens, and a batch of eight whose fourth prompt is 64 words long
        vllm.maxModelLen = 64;
        List<String> prompts = eightPromptsWithTheFourthTooLong(64);

        // When the batch is completed
        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(16), prompts));

        // Then the fourth prompt fails alone, as refused, with the worker's own words on the context length
        assertThat(outcomes.get(3)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                .isInstanceOf(WorkerException.Rejected.class)
                .hasMessage(FakeVllm.contextLengthMessage(16, 64, 64)));

        // And the seven others have their own answers and counts
        for (int i = 0; i < 8; i++) {
            if (i != 3) {
                String prompt = prompts.get(i);
                assertThat(outcomes.get(i)).isEqualTo(new WorkerOutcome.Generated(prompt.toUpperCase(),
                        new TokenUsage(FakeVllm.promptTokens(prompt), FakeVllm.completionTokens(prompt, 16)), FinishReason.STOP));
            }
        }

        // And the worker got the batch once, then each prompt once on its own; the eight re-sent prompts were counted
        assertThat(vllm.calls()).hasSize(9);
        assertThat(vllm.calls().getFirst()).containsExactlyElementsOf(prompts);
        assertThat(resent).containsExactly(Map.entry("refused", 8));
    }

    @Test
    void aTooLongPromptAloneIsRefusedAsItsCallersFault() {
        vllm.maxModelLen = 64;

        assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(16), List.of("word ".repeat(60)))))
                .isInstanceOf(WorkerException.Rejected.class)
                .hasMessage(FakeVllm.contextLengthMessage(16, 64, 60));
        assertThat(vllm.calls()).hasSize(1);
        assertThat(resent).isEmpty();
    }

    @Test
    void aGenerationThatFailsForOnePromptFailsOnlyThatPromptAfterOneRetryOfEachPromptAlone() {
        // Given a batch of three whose second prompt makes the generation fail (vLLM: HTTP 500 for the whole list)
        List<String> prompts = List.of("first", "second " + FakeVllm.GENERATION_ERROR, "third");

        // When it is completed
        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(16), prompts));

        // Then only the second fails, as a bad answer (502 for its caller), the others are answered
        assertThat(outcomes.get(0)).isInstanceOf(WorkerOutcome.Generated.class);
        assertThat(outcomes.get(1)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("worker 1 answered HTTP 500 to /v1/completions"));
        assertThat(outcomes.get(2)).isInstanceOf(WorkerOutcome.Generated.class);
        assertThat(vllm.calls()).hasSize(4);
        assertThat(resent).containsExactly(Map.entry("failed", 3));
    }

    @Test
    void theApiKeyIsSentAndAWrongOneIsMisconfigurationThatTheHealthCheckSeesThoughVllmsHealthEndpointIsUp() {
        // Given vLLM started with --api-key
        vllm.apiKey = "sk-right-key-0123456789";

        // When the gateway has the right key, then batches are answered and the worker is healthy
        try (var keyed = worker("sk-right-key-0123456789")) {
            assertThat(keyed.complete(new Batch(1, new GenerationParameters(4), List.of("a", "b")))).hasSize(2);
            assertThat(keyed.health()).isEqualTo(WorkerHealth.UP);
        }

        // When it has a wrong key, then every batch is refused as misconfiguration, naming the setting to fix
        try (var wrong = worker("sk-wrong")) {
            assertThatThrownBy(() -> wrong.complete(new Batch(2, new GenerationParameters(4), List.of("a", "b"))))
                    .isInstanceOf(WorkerException.Misconfigured.class)
                    .hasMessageContaining("GATEWAY_WORKER_API_KEY")
                    .hasMessageNotContaining("sk-");

            // And its health check says so, although vLLM's /health (which checks no key) answers 200
            assertThat(wrong.health()).isEqualTo(WorkerHealth.misconfigured(
                    "worker 1 refused the gateway's credentials (HTTP 401): check GATEWAY_WORKER_API_KEY"));
        }
        // And no key at all is refused the same way
        assertThat(worker.health().up()).isFalse();
    }

    @Test
    void aModelTheServerDoesNotServeIsMisconfigurationThatTheHealthCheckSees() {
        try (var wrongModel = new OpenAiWorker(
                new WorkerEndpoint(vllm.url(), Duration.ofSeconds(5), Duration.ofSeconds(20)), "llama3", Dialect.VLLM)) {
            assertThatThrownBy(() -> wrongModel.complete(new Batch(1, new GenerationParameters(4), List.of("a", "b"))))
                    .isInstanceOf(WorkerException.Misconfigured.class)
                    .hasMessage("model llama3 is not served by worker 1: HTTP 404 The model `llama3` does not exist.");
            assertThat(wrongModel.health()).isEqualTo(WorkerHealth.misconfigured(
                    "model llama3 is not served by worker 1: 404, it serves " + MODEL));
        }
        assertThat(resent).isEmpty();
    }

    @Test
    void aStrictServerThatRefusesReturnTokenIdsByNameHasEachBatchSentAgainWithoutIt() {
        // Given an OpenAI-compatible server that refuses unknown fields, configured as vLLM
        vllm.strict = true;

        // When two batches are completed
        List<WorkerOutcome> first = worker.complete(new Batch(1, new GenerationParameters(16), List.of("one two", "three")));
        List<WorkerOutcome> second = worker.complete(new Batch(2, new GenerationParameters(16), List.of("four")));

        // Then every prompt is answered with its own counts, the lone one too
        assertThat(first).containsExactly(
                new WorkerOutcome.Generated("ONE TWO", new TokenUsage(2, 3), FinishReason.STOP),
                new WorkerOutcome.Generated("THREE", new TokenUsage(1, 5), FinishReason.STOP));
        assertThat(second).containsExactly(new WorkerOutcome.Generated("FOUR", new TokenUsage(1, 4), FinishReason.STOP));

        // And each batch was tried as a list, then one prompt per call; it is not a refused batch to split, so nothing
        // counts as re-sent
        assertThat(vllm.calls()).hasSize(5).first().isEqualTo(List.of("one two", "three"));
        assertThat(vllm.calls()).containsExactlyInAnyOrder(List.of("one two", "three"), List.of("one two"), List.of("three"),
                List.of("four"), List.of("four"));
        assertThat(resent).isEmpty();
    }

    @Test
    void aBatchOfChatsIsOneChatCallPerConversationEachBilledItsOwnUsage() {
        var shortChat = new Prompt.Chat(List.of(new Prompt.Message("user", "hi")));
        var longChat = new Prompt.Chat(List.of(
                new Prompt.Message("system", "be kind"), new Prompt.Message("user", "tell me a story")));

        List<WorkerOutcome> outcomes = worker.complete(Batch.ofChats(1, new GenerationParameters(3), List.of(shortChat, longChat)));

        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("HI", new TokenUsage(1 + 2, 2), FinishReason.STOP),
                new WorkerOutcome.Generated("TELL ME A STORY", new TokenUsage(2 + 2 + 4 + 2, 3), FinishReason.LENGTH));
        assertThat(vllm.chats()).containsExactlyInAnyOrder(
                List.of("user: hi"), List.of("system: be kind", "user: tell me a story"));
        assertThat(vllm.calls()).isEmpty();
    }

    @Test
    void aListOfPromptsWithTokenIdsIsOneCallBilledFromTheIds() {
        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(3), List.of("alpha beta", "go")));

        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("ALPHA BETA", new TokenUsage(2, 3), FinishReason.LENGTH),
                new WorkerOutcome.Generated("GO", new TokenUsage(1, 2), FinishReason.STOP));
        assertThat(vllm.calls()).hasSize(1);
    }
}
