package dev.batchgateway.completion;

import java.util.List;
import java.util.concurrent.Semaphore;

/** A {@link SpyWorker} whose calls each wait for the test to let one through ({@link #letThrough(int)}). */
public class GatedWorker extends SpyWorker {

    private final Semaphore gate = new Semaphore(0);

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        List<WorkerOutcome> answers = super.complete(batch);
        try {
            gate.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new WorkerException.TimedOut("interrupted", e);
        }
        return answers;
    }

    /** Lets this many calls, held or still to come, answer. */
    public void letThrough(int calls) {
        gate.release(calls);
    }
}
