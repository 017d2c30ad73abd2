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
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class SimulatedWorkerTest {

    @Test
    void aTextIsAnsweredWithItsWordsReversedAndCountedInWords() {
        // Given a simulation without latency
        var worker = new SimulatedWorker(Duration.ZERO);

        // When a batch of two texts is completed with room for ten tokens
        var outcomes = worker.complete(new Batch(1, new GenerationParameters(10), List.of("one two three", "  alone  ")));

        // Then each is its words in reverse order, counted in words, and stopped by itself
        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("three two one", new TokenUsage(3, 3), FinishReason.STOP),
                new WorkerOutcome.Generated("alone", new TokenUsage(1, 1), FinishReason.STOP));
        assertThat(worker.model()).isEqualTo("simulated");
    }

    @Test
    void anInputIsEmbeddedAsAUnitVectorFromItsTextAloneCountedInWords() {
        // Given a simulated embedding model
        var worker = new SimulatedWorker("simulated-embedding", Duration.ZERO);

        // When a batch of three inputs, two of them alike, is embedded, and then one of them again in 4 dimensions
        var outcomes = worker.embed(Batch.ofEmbeddings(1, GenerationParameters.embedding("simulated-embedding"), List.of(
                new Prompt.Embedding("the quick fox", null), new Prompt.Embedding("jumps", null),
                new Prompt.Embedding("the quick fox", null))));
        var shorter = worker.embed(Batch.ofEmbeddings(2, GenerationParameters.embedding("simulated-embedding"),
                List.of(new Prompt.Embedding("jumps", 4))));

        // Then each is a vector of unit length in the model's own 16 dimensions, counted in words
        var first = (WorkerOutcome.Embedded) outcomes.get(0);
        var second = (WorkerOutcome.Embedded) outcomes.get(1);
        assertThat(first.vector()).hasSize(SimulatedWorker.DIMENSIONS);
        double squares = 0;
        for (float each : first.vector()) {
            squares += each * each;
        }
        assertThat(squares).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-5));
        assertThat(first.usage()).isEqualTo(new TokenUsage(3, 0));
        assertThat(second.usage()).isEqualTo(new TokenUsage(1, 0));
        // and alike inputs get the same vector, others another; dimensions asked are given
        assertThat(((WorkerOutcome.Embedded) outcomes.get(2)).vector()).containsExactly(first.vector());
        assertThat(second.vector()).isNotEqualTo(first.vector());
        assertThat(((WorkerOutcome.Embedded) shorter.getFirst()).vector()).hasSize(4);
    }

    @Test
    void anAnswerLongerThanMaxTokensIsCutThere() {
        assertThat(SimulatedWorker.generate("a b c", 2))
                .isEqualTo(new WorkerOutcome.Generated("c b", new TokenUsage(3, 2), FinishReason.LENGTH));
        // exactly max tokens is not cut
        assertThat(SimulatedWorker.generate("a b", 2))
                .isEqualTo(new WorkerOutcome.Generated("b a", new TokenUsage(2, 2), FinishReason.STOP));
    }

    @Test
    void aChatIsAnsweredFromItsLastMessageAndBilledForEveryMessage() {
        // Given a simulation under a model name of its own
        var worker = new SimulatedWorker("chatty", Duration.ZERO);
        var chat = new Prompt.Chat(List.of(
                new Prompt.Message("system", "be brief"),
                new Prompt.Message("assistant", "  "),
                new Prompt.Message("user", "hello there world")));

        // When a batch of that chat is completed with room for two tokens
        var outcomes = worker.complete(Batch.ofChats(1, new GenerationParameters(2), List.of(chat)));

        // Then the answer is the last message reversed and cut, and every message's words are prompt tokens
        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("world there", new TokenUsage(5, 2), FinishReason.LENGTH));
        assertThat(worker.model()).isEqualTo("chatty");
    }

    @Test
    void eachBatchTakesTheConfiguredLatency() {
        var worker = new SimulatedWorker(Duration.ofMillis(200));

        long started = System.nanoTime();
        worker.complete(new Batch(1, new GenerationParameters(4), List.of("x")));

        assertThat(Duration.ofNanos(System.nanoTime() - started)).isGreaterThanOrEqualTo(Duration.ofMillis(200));
    }

    @Test
    void anInterruptedCallIsAbandonedAsTimedOutAndKeepsTheInterrupt() throws Exception {
        // Given a simulation that takes a minute per batch
        var worker = new SimulatedWorker(Duration.ofMinutes(1));
        var thrown = new AtomicReference<Throwable>();
        var stillInterrupted = new AtomicReference<Boolean>();

        // When the calling thread is interrupted
        var caller = Thread.ofVirtual().start(() -> {
            try {
                worker.complete(new Batch(1, new GenerationParameters(4), List.of("x")));
            } catch (RuntimeException e) {
                thrown.set(e);
                stillInterrupted.set(Thread.currentThread().isInterrupted());
            }
        });
        caller.interrupt();
        assertThat(caller.join(Duration.ofSeconds(10))).isTrue();

        // Then the call ends as timed out, and the thread is still marked interrupted
        assertThat(thrown.get()).isInstanceOf(WorkerException.TimedOut.class).hasMessage("the simulated call was abandoned");
        assertThat(stillInterrupted.get()).isTrue();
    }
}
