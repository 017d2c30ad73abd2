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

/** The model is part of the batch key: a batch never mixes models, and every usage row names the model that served it. */
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

    @Test
    void requestsForTwoModelsFormTwoBatchesAndEachRowNamesItsModel() throws Exception {
        // Given a scheduler that sends a batch when it holds four requests
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), Ticker.system(), UsageEvents.NONE)
                .start();
        scheduler = new Scheduler(worker, ledger,
                new SchedulerPolicy(4, Duration.ofSeconds(30), 8, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)),
                Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();

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
