package dev.batchgateway;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.WorkerApi;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import org.springframework.beans.factory.config.BeanPostProcessor;

/**
 * Wraps the application's worker: records every batch it is given, and holds batches with a prompt starting with
 * {@code "hold"} until {@link #release()} (or an interrupt), so a test can keep the worker busy.
 */
public final class HoldingWorker implements WorkerApi {

    public static final List<Batch> batches = new CopyOnWriteArrayList<>();
    private static volatile CountDownLatch held = new CountDownLatch(1);

    private final WorkerApi worker;

    private HoldingWorker(WorkerApi worker) {
        this.worker = worker;
    }

    /** Installs the wrapper around the application's WorkerApi bean. */
    public static BeanPostProcessor installer() {
        return new BeanPostProcessor() {
            @Override
            public Object postProcessAfterInitialization(Object bean, String name) {
                return bean instanceof WorkerApi worker && !(bean instanceof HoldingWorker) ? new HoldingWorker(worker) : bean;
            }
        };
    }

    /** Lets held batches go, and arms a new hold for the next test. */
    public static void release() {
        CountDownLatch previous = held;
        held = new CountDownLatch(1);
        previous.countDown();
    }

    public static List<String> prompts() {
        return batches.stream().flatMap(batch -> batch.prompts().stream()).toList();
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        batches.add(batch);
        if (batch.prompts().stream().anyMatch(prompt -> prompt.startsWith("hold"))) {
            try {
                held.await();
            } catch (InterruptedException e) {
                throw new WorkerException.TimedOut("interrupted while held", e);
            }
        }
        return worker.complete(batch);
    }

    @Override
    public String model() {
        return worker.model();
    }
}
