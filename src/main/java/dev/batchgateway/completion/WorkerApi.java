package dev.batchgateway.completion;

import java.util.List;
import java.util.Optional;

/**
 * An inference server that completes a batch of prompts in one call: vLLM, Ollama, a pool of them, or a simulation.
 *
 * <p>Implementations block until the batch is done, bound the call in time themselves, and respond to interrupts
 * by abandoning the call.
 */
public interface WorkerApi {

    /**
     * Completes every prompt of the batch.
     *
     * @return one outcome per prompt, in the order of {@link Batch#prompts()}
     * @throws WorkerException when the batch as a whole failed
     */
    List<WorkerOutcome> complete(Batch batch);

    /**
     * Completes every prompt of the batch and reports its text as it is generated. A worker that cannot stream reports
     * each generated prompt's whole text when the batch is done; one that can streams its server's answer when
     * {@link BatchProgress#streamed()}.
     *
     * @return one outcome per prompt, in order, with the whole text of each, as {@link #complete(Batch)} does
     * @throws WorkerException when the batch as a whole failed, before or after some of its text was reported
     */
    default List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
        List<WorkerOutcome> outcomes = complete(batch);
        // an answer that does not fit the batch is the scheduler's to refuse; report only what fits
        int reported = outcomes == null ? 0 : Math.min(outcomes.size(), batch.size());
        for (int i = 0; i < reported; i++) {
            if (outcomes.get(i) instanceof WorkerOutcome.Generated generated) {
                progress.counted(i, generated.usage());
                if (!generated.text().isEmpty()) {
                    progress.text(i, generated.text());
                }
            }
        }
        return outcomes;
    }

    /**
     * Embeds every input of a batch of embeddings ({@link Batch#embeddings()}), in one call where its server takes a
     * list. A worker whose model does not embed refuses (the entry points send embeddings only to models configured to
     * embed, so this is a bug, answered 502).
     *
     * @return one {@link WorkerOutcome.Embedded} (or {@link WorkerOutcome.Failed}) per input, in order
     * @throws WorkerException when the batch as a whole failed
     */
    default List<WorkerOutcome> embed(Batch batch) {
        throw new WorkerException.BadAnswer("the workers of model " + model() + " do not embed");
    }

    /** The batch's one call: a batch of embeddings is embedded, any other completed. */
    default List<WorkerOutcome> call(Batch batch, BatchProgress progress) {
        return batch.isEmbedding() ? embed(batch) : complete(batch, progress);
    }

    /** The model this worker serves, recorded with every usage row. */
    String model();

    /**
     * The batch slots of the workers that serve {@code model}, when this worker counts them itself (a pool of servers
     * does); empty leaves the count to the scheduler ({@link SchedulerPolicy#maxConcurrentBatches()} per model).
     */
    default Optional<Capacity> capacity(String model) {
        return Optional.empty();
    }
}
