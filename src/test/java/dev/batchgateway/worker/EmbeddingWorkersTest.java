package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.json.JsonMapper;

/**
 * The workers' embeddings call against fakes that answer as the real servers do: vLLM's and llama.cpp's {@code
 * /v1/embeddings} and Ollama's {@code /api/embed}, each with the whole list in one call and the call's count only.
 */
class EmbeddingWorkersTest {

    private static final String MODEL = "BAAI/bge-small-en-v1.5";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    @Test
    void anOpenAiCompatibleServerEmbedsTheWholeBatchInOneCallAndEachInputGetsItsVector() {
        try (var server = new FakeVllm(MODEL);
                var worker = new OpenAiWorker(endpoint(server.url()), MODEL)) {
            // Given a batch of three inputs of different lengths
            List<String> inputs = List.of("one", "two words", "and then three more words");

            // When the worker embeds it
            List<WorkerOutcome> outcomes = worker.embed(batch(inputs, null));

            // Then the server got one call with the list, the model, float encoding and no dimensions
            assertThat(server.embeddingCalls()).containsExactly(inputs);
            var body = JSON.readTree(server.server().getAllServeEvents().getFirst().getRequest().getBodyAsString());
            assertThat(body.get("model").asString()).isEqualTo(MODEL);
            assertThat(body.get("encoding_format").asString()).isEqualTo("float");
            assertThat(body.has("dimensions")).isFalse();
            // and each input has its own vector, matched by index though the server answered them in reverse
            for (int i = 0; i < inputs.size(); i++) {
                var embedded = (WorkerOutcome.Embedded) outcomes.get(i);
                assertThat(embedded.vector()).containsExactly(SimulatedWorker.vector(inputs.get(i), FakeVllm.EMBEDDING_DIMENSIONS));
                assertThat(embedded.usage().completionTokens()).isZero();
            }
            // and the inputs' prompt tokens add up to exactly what the server counted for the call
            int counted = inputs.stream().mapToInt(FakeVllm::embeddingTokens).sum();
            assertThat(outcomes.stream().mapToInt(outcome -> ((WorkerOutcome.Embedded) outcome).usage().promptTokens()).sum())
                    .isEqualTo(counted);
        }
    }

    @Test
    void alikeInputsInOneCallAreEachBilledExactlyAndDimensionsAreSent() {
        try (var server = new FakeVllm(MODEL);
                var worker = new OpenAiWorker(endpoint(server.url()), MODEL, Dialect.LLAMA_CPP)) {
            // Given five copies of one input, asked in 4 dimensions
            List<String> inputs = List.of("the same sentence", "the same sentence", "the same sentence", "the same sentence",
                    "the same sentence");

            // When the worker embeds them
            List<WorkerOutcome> outcomes = worker.embed(batch(inputs, 4));

            // Then one call carried them with dimensions 4, and each input is billed exactly what it costs alone
            assertThat(server.embeddingCalls()).hasSize(1);
            var body = JSON.readTree(server.server().getAllServeEvents().getFirst().getRequest().getBodyAsString());
            assertThat(body.get("dimensions").asInt()).isEqualTo(4);
            assertThat(outcomes).allSatisfy(outcome -> {
                var embedded = (WorkerOutcome.Embedded) outcome;
                assertThat(embedded.vector()).hasSize(4);
                assertThat(embedded.usage()).isEqualTo(new TokenUsage(FakeVllm.embeddingTokens("the same sentence"), 0));
            });
        }
    }

    @Test
    void aListRefusedForOneTooLongInputIsSentAgainOneInputPerCallAndOnlyThatInputFails() {
        try (var server = new FakeVllm(MODEL);
                var worker = new OpenAiWorker(endpoint(server.url()), MODEL)) {
            // Given a server whose context holds 10 tokens, and a batch with one input of 20 words among two short ones
            server.maxModelLen = 10;
            String tooLong = String.join(" ", java.util.Collections.nCopies(20, "word"));
            List<String> inputs = List.of("short one", tooLong, "short two");

            // When the worker embeds it
            List<WorkerOutcome> outcomes = worker.embed(batch(inputs, null));

            // Then the list was refused and each input sent alone; the short ones embedded and billed their own counts
            assertThat(server.embeddingCalls()).hasSize(4).first().isEqualTo(inputs);
            assertThat(outcomes.get(0)).isInstanceOfSatisfying(WorkerOutcome.Embedded.class,
                    embedded -> assertThat(embedded.usage().promptTokens()).isEqualTo(FakeVllm.embeddingTokens("short one")));
            assertThat(outcomes.get(2)).isInstanceOf(WorkerOutcome.Embedded.class);
            // and only the long one failed, as refused (its caller gets the 400, not the others)
            assertThat(outcomes.get(1)).isInstanceOfSatisfying(WorkerOutcome.Failed.class,
                    failed -> assertThat(failed.cause()).isInstanceOf(WorkerException.Rejected.class));
        }
    }

    @Test
    void ollamaEmbedsTheWholeBatchInOneApiEmbedCall() {
        try (var ollama = new FakeOllama("nomic-embed-text");
                var worker = new OllamaWorker(endpoint(ollama.url()), "nomic-embed-text")) {
            // Given a batch of four inputs
            List<String> inputs = List.of("a", "b c", "d e f", "g h i j");

            // When the worker embeds it
            List<WorkerOutcome> outcomes = worker.embed(batch(inputs, null));

            // Then Ollama got one /api/embed call with the list
            assertThat(ollama.embedCalls).containsExactly(inputs);
            // and each input its own vector, the call's prompt_eval_count (10 words) shared out over them in full
            for (int i = 0; i < inputs.size(); i++) {
                assertThat(((WorkerOutcome.Embedded) outcomes.get(i)).vector())
                        .containsExactly(SimulatedWorker.vector(inputs.get(i), FakeOllama.EMBEDDING_DIMENSIONS));
            }
            assertThat(outcomes.stream().mapToInt(outcome -> ((WorkerOutcome.Embedded) outcome).usage().promptTokens()).sum())
                    .isEqualTo(10);
        }
    }

    @Test
    void aCallsCountIsSharedOutByTheInputsSizesAndAddsUpToIt() {
        // Given counts and inputs of several sizes, Then the shares add up to the count, larger inputs get more, and alike
        // inputs the same
        int[] shares = EmbeddingCounts.shares(100, List.of("a", "a much longer input than the first one", "a"));
        assertThat(Arrays.stream(shares).sum()).isEqualTo(100);
        assertThat(shares[1]).isGreaterThan(shares[0]);
        assertThat(shares[0]).isEqualTo(shares[2]);
        for (int total : new int[] {0, 1, 7, 63, 64, 65, 1000}) {
            List<String> inputs = IntStream.range(0, 64).mapToObj(i -> "input " + "x".repeat(i % 9)).toList();
            assertThat(Arrays.stream(EmbeddingCounts.shares(total, inputs)).sum()).as("shares of %d", total).isEqualTo(total);
        }
        assertThat(EmbeddingCounts.shares(12, List.of("x", "x", "x"))).containsExactly(4, 4, 4);
    }

    private static Batch batch(List<String> inputs, Integer dimensions) {
        return Batch.ofEmbeddings(1, GenerationParameters.embedding(MODEL),
                inputs.stream().map(input -> new Prompt.Embedding(input, dimensions)).toList());
    }

    private static WorkerEndpoint endpoint(String url) {
        return new WorkerEndpoint(url, Duration.ofSeconds(5), Duration.ofSeconds(20));
    }
}
