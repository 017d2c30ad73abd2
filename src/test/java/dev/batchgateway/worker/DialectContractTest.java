package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;

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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The contract every dialect keeps, against FakeVllm behaving as each server does (its answers derived from each
 * server's source and, for llama.cpp, from recorded exchanges): the server is recognised whatever the configured type,
 * each prompt is billed its own exact counts, one prompt over the context fails alone, a chat and a stream are billed,
 * and the health check sees a refused key and a model not served even where health and model listing are open.
 */
class DialectContractTest {

    private static final String MODEL = "served/model";
    /** One fake for the class (each test sets what it needs on a reset one): starting a server costs more than a test. */
    private static final FakeVllm server = new FakeVllm(MODEL);
    private final List<OpenAiWorker> workers = new ArrayList<>();

    @BeforeEach
    void resetTheServer() {
        server.reset();
    }

    @AfterEach
    void closeWorkers() {
        workers.forEach(OpenAiWorker::close);
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    /** A worker configured as a generic OpenAI-compatible server, so that only recognising the server picks its dialect. */
    private OpenAiWorker worker(String model, String apiKey) {
        var worker = new OpenAiWorker(new WorkerEndpoint(server.url(), apiKey, Duration.ofSeconds(5), Duration.ofSeconds(20)),
                model, Dialect.OPENAI);
        workers.add(worker);
        return worker;
    }

    private static Dialect dialectOf(FakeVllm.Kind kind) {
        return switch (kind) {
            case VLLM -> Dialect.VLLM;
            case LLAMA_CPP -> Dialect.LLAMA_CPP;
            case SGLANG -> Dialect.SGLANG;
            case TGI -> Dialect.TGI;
        };
    }

    /** Whether the server takes a whole list in one call (TGI's list has no per-prompt usage: one call per prompt). */
    private static boolean oneCallPerList(FakeVllm.Kind kind) {
        return kind != FakeVllm.Kind.TGI;
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void theServerIsRecognisedAtItsHealthCheckAndEachPromptOfABatchIsBilledItsOwnCounts(FakeVllm.Kind kind) {
        // Given the server, and a worker that was told only "OpenAI-compatible"
        server.kind = kind;
        var worker = worker(MODEL, null);

        // When its health is checked, then it is up and spoken to in its own dialect
        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);
        assertThat(worker.dialect()).isEqualTo(dialectOf(kind));

        // When a batch of three prompts with different counts is completed
        List<String> prompts = List.of("a", "bb cc", "ddd ee ff gg");
        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(2), prompts));

        // Then each prompt has its text and its own counts
        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("A", new TokenUsage(1, 1), FinishReason.STOP),
                new WorkerOutcome.Generated("BB CC", new TokenUsage(2, 2), FinishReason.LENGTH),
                new WorkerOutcome.Generated("DDD EE FF GG", new TokenUsage(4, 2), FinishReason.LENGTH));

        // And the server got one call with every prompt, or (TGI) one call per prompt
        if (oneCallPerList(kind)) {
            assertThat(server.calls()).containsExactly(prompts);
        } else {
            assertThat(server.calls()).containsExactlyInAnyOrder(List.of("a"), List.of("bb cc"), List.of("ddd ee ff gg"));
        }
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void aLonePromptAndThenABatchAreEachBilledExactlyAndTheLoneAnswerChangesNothing(FakeVllm.Kind kind) {
        server.kind = kind;
        var worker = worker(MODEL, null);
        worker.health();

        // When a lone prompt is completed, then it is billed its own counts in one call
        assertThat(worker.complete(new Batch(1, new GenerationParameters(8), List.of("alone here"))))
                .containsExactly(new WorkerOutcome.Generated("ALONE HERE", new TokenUsage(2, 5), FinishReason.STOP));
        assertThat(server.calls()).hasSize(1);

        // And a batch after it is still one call (TGI: one per prompt), each prompt billed its own counts
        assertThat(worker.complete(new Batch(2, new GenerationParameters(8), List.of("x y z", "word"))))
                .containsExactly(
                        new WorkerOutcome.Generated("X Y Z", new TokenUsage(3, 1), FinishReason.STOP),
                        new WorkerOutcome.Generated("WORD", new TokenUsage(1, 4), FinishReason.STOP));
        assertThat(server.calls()).hasSize(oneCallPerList(kind) ? 2 : 3);
        assertThat(worker.dialect()).isEqualTo(dialectOf(kind));
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void onePromptOverTheContextInABatchOfEightFailsAloneWithTheServersOwnWordsAndTheSevenOthersAreBilled(FakeVllm.Kind kind) {
        // Given a context of 64 tokens and a batch of eight whose sixth prompt is 64 words long
        server.kind = kind;
        server.maxModelLen = 64;
        server.maxClientBatchSize = 8;
        var worker = worker(MODEL, null);
        worker.health();
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            prompts.add(i == 5 ? "long ".repeat(64) : "prompt number " + i);
        }

        // When the batch is completed
        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(16), prompts));

        // Then seven prompts are answered and billed, and the sixth alone is refused as its caller's fault, in the
        // server's own words
        for (int i = 0; i < 8; i++) {
            if (i == 5) {
                assertThat(outcomes.get(i)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                        .isInstanceOf(WorkerException.Rejected.class)
                        .hasMessage(server.contextMessage(16, 64)));
            } else {
                assertThat(outcomes.get(i)).isEqualTo(new WorkerOutcome.Generated(
                        prompts.get(i).toUpperCase(), new TokenUsage(3, 6), FinishReason.STOP));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void aChatIsOneCallBilledItsUsage(FakeVllm.Kind kind) {
        server.kind = kind;
        var worker = worker(MODEL, null);
        worker.health();

        var chat = new Prompt.Chat(List.of(new Prompt.Message("user", "tell me")));
        assertThat(worker.complete(Batch.ofChats(1, new GenerationParameters(3), List.of(chat))))
                .containsExactly(new WorkerOutcome.Generated("TELL ME", new TokenUsage(2 + 2, 3), FinishReason.LENGTH));
        assertThat(server.chats()).containsExactly(List.of("user: tell me"));
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void aStreamedBatchGivesEachPromptItsTextAndItsOwnCounts(FakeVllm.Kind kind) {
        server.kind = kind;
        var worker = worker(MODEL, null);
        worker.health();
        var progress = new StreamedTexts();

        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(4), List.of("one two", "three")), progress);

        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("ONE TWO", new TokenUsage(2, 3), FinishReason.STOP),
                new WorkerOutcome.Generated("THREE", new TokenUsage(1, 4), FinishReason.LENGTH));
        assertThat(progress.texts).isEqualTo(Map.of(0, "ONE TWO", 1, "THREE"));
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void aRefusedKeyIsSeenByTheHealthCheckEvenWhereHealthAndTheModelListAreOpen(FakeVllm.Kind kind) {
        // Given the server started with a key, and a worker without it
        server.kind = kind;
        server.apiKey = "sk-server";
        var withoutKey = worker(MODEL, null);
        var withWrongKey = worker(MODEL, "sk-wrong");
        var withKey = worker(MODEL, "sk-server");

        // Then only the right key is healthy
        for (var refused : List.of(withoutKey, withWrongKey)) {
            assertThat(refused.health()).isEqualTo(WorkerHealth.misconfigured(WorkerEndpoint.refusedKey("worker 1", 401)));
        }
        assertThat(withKey.health()).isEqualTo(WorkerHealth.UP);
        assertThat(withKey.dialect()).isEqualTo(dialectOf(kind));
    }

    @ParameterizedTest
    @EnumSource(FakeVllm.Kind.class)
    void aModelTheServerDoesNotServeIsSeenByTheHealthCheckEvenWhereTheServerIgnoresTheModelName(FakeVllm.Kind kind) {
        server.kind = kind;
        var worker = worker("another/model", null);

        assertThat(worker.health()).isEqualTo(WorkerHealth.misconfigured(
                WorkerEndpoint.notServed("worker 1", "another/model", "404, it serves " + MODEL)));
    }

    @ParameterizedTest
    @EnumSource(value = FakeVllm.Kind.class, names = {"LLAMA_CPP", "SGLANG", "TGI"})
    void aServerConfiguredAsVllmIsSpokenToAsWhatItSaysItIs(FakeVllm.Kind kind) {
        server.kind = kind;
        var worker = new OpenAiWorker(new WorkerEndpoint(server.url(), Duration.ofSeconds(5), Duration.ofSeconds(20)), MODEL, Dialect.VLLM);
        workers.add(worker);

        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);

        assertThat(worker.dialect()).isEqualTo(dialectOf(kind));
    }
}
