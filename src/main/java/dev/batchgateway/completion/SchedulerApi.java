package dev.batchgateway.completion;

import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/** Completes prompts by batching them for a worker. */
public interface SchedulerApi {

    /**
     * Queues the request for the next batch with its parameters.
     *
     * <p>The future always completes: with the completion, or exceptionally with a {@link WorkerException},
     * {@link DeadlineExceededException} or {@link CompletionRejectedException}. Cancelling it before its batch is
     * sent drops the request from the batch.
     *
     * @param timeout how long the caller waits at most; the gateway's own request timeout applies when it is shorter
     * @throws CompletionRejectedException when the request is not taken at all (queue full, shutting down)
     */
    CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout);

    /**
     * Like {@link #submit(CompletionRequest, Duration)}, and asks {@code caller} just before the batch leaves whether
     * the caller is still there; a caller that has gone is dropped from the batch and its future cancelled.
     * Schedulers that cannot drop requests ignore the check.
     */
    default CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout, CallerPresence caller) {
        return submit(request, timeout);
    }

    /**
     * Like {@link #submit(CompletionRequest, Duration, CallerPresence)}, and gives the caller its text as it is generated,
     * through {@code deltas}, before the future completes with the whole completion. Schedulers that cannot stream give
     * the whole text as one piece.
     */
    default CompletableFuture<Completion> submit(
            CompletionRequest request, Duration timeout, CallerPresence caller, Deltas deltas) {
        CompletableFuture<Completion> completion = submit(request, timeout, caller);
        CompletableFuture<Completion> streamed = completion.thenApply(done -> {
            if (!done.text().isEmpty()) {
                deltas.text(done.text());
            }
            return done;
        });
        streamed.whenComplete((done, failure) -> {
            if (streamed.isCancelled()) {
                completion.cancel(false);
            }
        });
        return streamed;
    }

    /** Queues the request with the gateway's own request timeout. */
    default CompletableFuture<Completion> submit(CompletionRequest request) {
        return submit(request, ChronoUnit.FOREVER.getDuration());
    }

    /** Completes the request, blocking the calling (virtual) thread until it is done. */
    default Completion complete(CompletionRequest request) throws InterruptedException {
        CompletableFuture<Completion> completion = submit(request);
        try {
            return completion.get();
        } catch (InterruptedException e) {
            completion.cancel(false);
            throw e;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException failure) {
                throw failure;
            }
            throw new CompletionException(e.getCause());
        }
    }
}
