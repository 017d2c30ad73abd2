package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Inputs to embed in the scheduler: batched in their model's lane by a batch size of their own, billed one row each. */
class EmbeddingBatchingTest {

    private static final long SLACK_SECONDS = 10;
    private static final GenerationParameters EMBEDDER = GenerationParameters.embedding("embedder");
    private static final GenerationParameters GENERATOR = new GenerationParameters("generator", 4, null, null, List.of(), null);

    private final ManualTicker frozen = new ManualTicker();
    private final SpyUsageRepository usage = new SpyUsageRepository();
    private final List<Scheduler> started = new ArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        for (Scheduler scheduler : started) {
            scheduler.shutdown(Duration.ofSeconds(1));
        }
    }

    @Test
    void inputsToEmbedLeaveByTheirOwnBatchSizeAndTextsByTheirs() throws Exception {
        // Given batches of 2 texts but 5 inputs to embed, a max-wait of 20 ms, and a clock that stands still
        var worker = new SpyWorker();
        var scheduler = scheduler(worker, new SchedulerPolicy(2, Duration.ofMillis(20), 4, 1000, Duration.ofSeconds(60),
                Duration.ofSeconds(60), Duration.ofMinutes(15), 5));

        // When 12 inputs to embed and 3 texts are queued before the loop starts
        List<CompletableFuture<Completion>> embedded = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            embedded.add(scheduler.submit(embedding(7, "input number " + i, null)));
        }
        List<CompletableFuture<Completion>> texts = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            texts.add(scheduler.submit(new CompletionRequest(UUID.randomUUID(), 7, "text " + i, GENERATOR)));
        }
        scheduler.start();
        // Then the full batches leave at once: two of five inputs, one of two texts
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 3);
        assertThat(worker.batches).filteredOn(Batch::isEmbedding).extracting(Batch::size).containsExactly(5, 5);
        assertThat(worker.batches).filteredOn(batch -> !batch.isEmbedding()).extracting(Batch::size).containsExactly(2);

        // And when max-wait passes, the rest leave: two inputs in one call, one text in another
        frozen.advance(Duration.ofMillis(20));
        for (CompletableFuture<Completion> each : embedded) {
            each.get(SLACK_SECONDS, TimeUnit.SECONDS);
        }
        for (CompletableFuture<Completion> each : texts) {
            each.get(SLACK_SECONDS, TimeUnit.SECONDS);
        }
        assertThat(worker.batches).filteredOn(Batch::isEmbedding).extracting(Batch::size).containsExactlyInAnyOrder(5, 5, 2);
        assertThat(worker.batches).filteredOn(Batch::isEmbedding).allSatisfy(batch -> {
            assertThat(batch.parameters().model()).isEqualTo("embedder");
            assertThat(batch.prompts()).isEmpty();
        });

        // And each caller has its own input's vector, and one usage row of its prompt tokens
        for (int i = 0; i < embedded.size(); i++) {
            Completion answer = embedded.get(i).join();
            String input = "input number " + i;
            assertThat(answer.embedding()[0]).isEqualTo(input.length());
            assertThat(answer.usage()).isEqualTo(new TokenUsage(input.length(), 0));
            SchedulerTest.awaitCondition(() -> usage.rows.stream().anyMatch(row -> row.requestId().equals(answer.requestId())));
            assertThat(usage.rows).filteredOn(row -> row.requestId().equals(answer.requestId())).singleElement()
                    .satisfies(row -> {
                        assertThat(row.usage()).isEqualTo(new TokenUsage(input.length(), 0));
                        assertThat(row.outcome()).isEqualTo(UsageOutcome.SERVED);
                        assertThat(row.model()).isEqualTo("embedder");
                    });
        }
    }

    @Test
    void inputsAskedInOtherDimensionsNeverShareABatch() throws Exception {
        // Given a scheduler whose clock stands still, batches of 8 inputs to embed
        var worker = new SpyWorker();
        var scheduler = scheduler(worker, new SchedulerPolicy(8, Duration.ofMillis(20), 4, 1000, Duration.ofSeconds(60),
                Duration.ofSeconds(60), Duration.ofMinutes(15), 8));

        // When inputs in 256 dimensions, in 512 and in the model's own are queued interleaved, and max-wait passes
        List<CompletableFuture<Completion>> answers = new ArrayList<>();
        Integer[] dimensions = {256, 512, null};
        for (int i = 0; i < 9; i++) {
            answers.add(scheduler.submit(embedding(3, "x" + i, dimensions[i % 3])));
        }
        scheduler.start();
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 9);
        frozen.advance(Duration.ofMillis(20));
        for (CompletableFuture<Completion> answer : answers) {
            answer.get(SLACK_SECONDS, TimeUnit.SECONDS);
        }

        // Then each batch holds the inputs of one dimensions only
        assertThat(worker.batches).hasSize(3).allSatisfy(batch ->
                assertThat(batch.embeddings()).extracting(Prompt.Embedding::dimensions).containsOnly(batch.dimensions()));
        assertThat(worker.batches).extracting(Batch::dimensions).containsExactlyInAnyOrder(256, 512, null);
    }

    @Test
    void anInputToEmbedReservesItsBytesAndAllowanceButNoMaxTokens() {
        // Given an input of 5 ASCII bytes and one of 2 characters of 3 bytes each
        // Then its bound is its bytes and the text allowance: an embedding generates nothing
        assertThat(TokenBound.of(embedding(1, "hello", null))).isEqualTo(5 + TokenBound.TEXT_ALLOWANCE);
        assertThat(TokenBound.of(embedding(1, "€€", 64))).isEqualTo(6 + TokenBound.TEXT_ALLOWANCE);
    }

    private static CompletionRequest embedding(long user, String input, Integer dimensions) {
        return new CompletionRequest(UUID.randomUUID(), user, new Prompt.Embedding(input, dimensions), EMBEDDER,
                ServiceTier.DEFAULT);
    }

    private Scheduler scheduler(WorkerApi worker, SchedulerPolicy policy) {
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), frozen, UsageEvents.NONE)
                .start();
        var scheduler = new Scheduler(worker, ledger, policy, frozen, Clock.systemUTC(), SchedulerEvents.NONE);
        started.add(scheduler);
        return scheduler;
    }
}
