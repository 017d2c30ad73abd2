package dev.batchgateway.worker;

import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * Completes (or embeds) the prompts of a batch with one call each, all at once: for servers that take one prompt per call, and to
 * find the prompts a server refused when it refused a whole batch. A prompt whose call fails gets a
 * {@link WorkerOutcome.Failed} while the others keep their answers; when every call fails for a reason that is not the
 * prompt's own ({@link WorkerException.Rejected}), the batch fails, so that the pool sees a worker that is down.
 */
final class FanOut {

    private FanOut() {}

    static <P> List<WorkerOutcome> complete(List<P> prompts, Function<P, ? extends WorkerOutcome> completeOne) {
        return complete(prompts, (position, prompt) -> completeOne.apply(prompt));
    }

    /** As above, with each prompt's position in the batch given to {@code completeOne} (for its progress). */
    static <P> List<WorkerOutcome> complete(List<P> prompts, BiFunction<Integer, P, ? extends WorkerOutcome> completeOne) {
        if (prompts.size() == 1) {
            return List.of(completeOne.apply(0, prompts.getFirst()));
        }
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<? extends WorkerOutcome>> calls = new ArrayList<>(prompts.size());
            for (int i = 0; i < prompts.size(); i++) {
                int position = i;
                P prompt = prompts.get(i);
                calls.add(threads.submit(() -> completeOne.apply(position, prompt)));
            }
            List<WorkerOutcome> outcomes = new ArrayList<>(prompts.size());
            WorkerException firstFailure = null;
            for (Future<? extends WorkerOutcome> call : calls) {
                try {
                    outcomes.add(call.get());
                } catch (ExecutionException e) {
                    WorkerException failure = e.getCause() instanceof WorkerException known
                            ? known
                            : new WorkerException.BadAnswer("the worker adapter failed: " + e.getCause(), e.getCause());
                    outcomes.add(new WorkerOutcome.Failed(failure));
                    firstFailure = firstFailure == null ? failure : firstFailure;
                } catch (InterruptedException e) {
                    // abandon every call (each cancels its HTTP exchange, closing its connection) before the
                    // executor's close waits for them; the interrupt stays set for our caller
                    calls.forEach(pending -> pending.cancel(true));
                    Thread.currentThread().interrupt();
                    throw new WorkerException.TimedOut("the calls to the worker were abandoned", e);
                }
            }
            boolean everyCallFailed = outcomes.stream().allMatch(WorkerOutcome.Failed.class::isInstance);
            boolean somePromptRefused = outcomes.stream()
                    .anyMatch(outcome -> outcome instanceof WorkerOutcome.Failed(WorkerException.Rejected refused));
            if (everyCallFailed && !somePromptRefused) {
                throw firstFailure;
            }
            return outcomes;
        }
    }
}
