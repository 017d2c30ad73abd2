package dev.batchgateway.completion;

import java.util.List;

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

    /** The model this worker serves, recorded with every usage row. */
    String model();
}
