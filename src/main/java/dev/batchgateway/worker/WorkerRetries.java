package dev.batchgateway.worker;

/** Told each time prompts are sent to a worker a second time, one per call, because it refused or failed their batch. */
@FunctionalInterface
interface WorkerRetries {

    WorkerRetries NONE = (reason, prompts) -> {};

    /**
     * @param reason {@code refused} (the worker answered 400 for the whole batch), {@code failed} (500) or
     *     {@code uncounted} (it answered without each prompt's counts)
     * @param prompts how many prompts were sent again
     */
    void promptsResent(String reason, int prompts);
}
