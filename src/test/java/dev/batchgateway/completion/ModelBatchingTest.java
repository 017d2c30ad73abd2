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

/**
 * The model and the kind of prompt are part of the batch key: a batch never mixes models, nor texts and chats; every
 * usage row names the model that served it.
 */
class ModelBatchingTest {

    private final SpyUsageRepository usage = new SpyUsageRepository();
    private final SpyWorker worker = new SpyWorker();
    private Scheduler scheduler;

    @AfterEach
    void stop() throws InterruptedException {
        scheduler.shutdown(Duration.ofSeconds(1));
    }

    private static CompletionRequest request(String prompt, String model) {
        return new CompletionRequest(UUID.randomUUID(), 42, prompt, new GenerationParameters(model, 16, null, null, List.of(), null));
    }

    private void startScheduler() {
        // sends a batch when it holds four requests, or at shutdown
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), Ticker.system(), UsageEvents.NONE)
                .start();
        scheduler = new Scheduler(worker, ledger,
                new SchedulerPolicy(4, Duration.ofSeconds(30), 8, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)),
                Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();
    }

    @Test
    void textsAndChatsWithTheSameParametersFormSeparateBatches() throws Exception {
        // Given a scheduler, two texts and two chats with the same parameters
        startScheduler();
        var chat = new Prompt.Chat(List.of(new Prompt.Message("user", "a chat")));
        var parameters = new GenerationParameters(16);
        List<CompletableFuture<Completion>> completions = List.of(
                scheduler.submit(new CompletionRequest(UUID.randomUUID(), 42, "a text", parameters)),
                scheduler.submit(new CompletionRequest(UUID.randomUUID(), 42, chat, parameters)),
                scheduler.submit(new CompletionRequest(UUID.randomUUID(), 42, "a text", parameters)),
                scheduler.submit(new CompletionRequest(UUID.randomUUID(), 42, chat, parameters)));

        // When the partial batches are sent
        scheduler.shutdown(Duration.ofSeconds(10));

        // Then one batch holds the texts, one the chats, and each caller got its own kind of answer
        assertThat(worker.batches).hasSize(2);
        assertThat(worker.batches).filteredOn(Batch::isChat).singleElement().satisfies(batch -> assertThat(batch.size()).isEqualTo(2));
        assertThat(worker.batches).filteredOn(batch -> !batch.isChat()).singleElement()
                .satisfies(batch -> assertThat(batch.prompts()).containsExactly("a text", "a text"));
        assertThat(completions.get(1).get(10, TimeUnit.SECONDS).text()).isEqualTo("completed: a chat");
        assertThat(completions.get(0).get(10, TimeUnit.SECONDS).text()).isEqualTo("completed: a text");
    }

    @Test
    void requestsForTwoModelsFormTwoBatchesAndEachRowNamesItsModel() throws Exception {
        // Given a scheduler that sends a batch when it holds four requests
        startScheduler();

        // When two requests of each of two models arrive, then two requests of the default model (no model named)
        List<CompletableFuture<Completion>> completions = new ArrayList<>();
        for (String model : new String[] {"small", "large", "small", "large", null, null}) {
            completions.add(scheduler.submit(request("for " + model, model)));
        }
        scheduler.shutdown(Duration.ofSeconds(10)); // sends the partial batches
        for (var completion : completions) {
            completion.get(10, TimeUnit.SECONDS);
        }

        // Then each batch holds the requests of one model only
        assertThat(worker.batches).hasSize(3).allSatisfy(batch -> assertThat(batch.prompts())
                .allMatch(prompt -> prompt.equals("for " + batch.parameters().model())));

        // And each usage row names the model of its batch; the default model's rows name the worker's model
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (usage.rows.size() < 6) {
            assertThat(System.nanoTime()).as("rows written within 10 s").isLessThan(deadline);
            Thread.sleep(10);
        }
        assertThat(usage.rows).extracting(UsageRecord::model)
                .containsExactlyInAnyOrder("small", "small", "large", "large", "spy-model", "spy-model");
    }
}
