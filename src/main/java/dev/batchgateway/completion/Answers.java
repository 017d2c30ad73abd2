package dev.batchgateway.completion;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The answers of one call's requests, one future per request in the call's order. A call fails whole: the first of its
 * requests to fail fails every answer not yet given with the same failure, and its requests still waiting leave their
 * batches (settled unbilled; those already at the worker are billed, the worker spends their tokens). A failure is the
 * domain's own ({@link WorkerException}, {@link DeadlineExceededException}, {@link CompletionRejectedException}), never
 * wrapped; a {@link CancellationException} means the caller has gone (or gave the call up).
 */
public final class Answers {

    private final List<CompletableFuture<Completion>> queued;
    private final List<CompletableFuture<Completion>> answers;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();

    /** @param queued the scheduler's futures of the call's requests, in order */
    Answers(List<CompletableFuture<Completion>> queued) {
        this.queued = List.copyOf(queued);
        List<CompletableFuture<Completion>> answers = new ArrayList<>(queued.size());
        for (int i = 0; i < queued.size(); i++) {
            answers.add(new CompletableFuture<>());
        }
        this.answers = List.copyOf(answers);
        for (int i = 0; i < queued.size(); i++) {
            CompletableFuture<Completion> request = this.queued.get(i);
            CompletableFuture<Completion> answer = this.answers.get(i);
            // an answer given up (its caller's wait ended) gives the call up: its requests leave their batches
            answer.whenComplete((done, failed) -> {
                if (answer.isCancelled()) {
                    failWhole(new CancellationException("the call was given up"));
                }
            });
            request.whenComplete((done, failed) -> {
                if (failed == null) {
                    answer.complete(done);
                } else {
                    failWhole(failureOf(failed));
                }
            });
        }
    }

    /**
     * The domain failure behind a future's: a {@link CompletionException} or {@link ExecutionException} unwrapped once.
     */
    public static Throwable failureOf(Throwable failure) {
        Objects.requireNonNull(failure, "failure");
        return (failure instanceof CompletionException || failure instanceof ExecutionException) && failure.getCause() != null
                ? failure.getCause()
                : failure;
    }

    /** Each request's answer, in the call's order. Cancelling one gives the whole call up. */
    public List<CompletableFuture<Completion>> each() {
        return answers;
    }

    /** The answer of a call of one request. */
    public CompletableFuture<Completion> only() {
        if (answers.size() != 1) {
            throw new IllegalStateException("a call of " + answers.size() + " requests has no only answer");
        }
        return answers.getFirst();
    }

    /**
     * Every request's completion, in the call's order, once all are answered; or the call's failure as soon as one
     * fails. Cancelling it gives the whole call up.
     */
    public CompletableFuture<List<Completion>> all() {
        var all = new CompletableFuture<List<Completion>>();
        CompletableFuture.allOf(answers.toArray(CompletableFuture[]::new)).whenComplete((done, failed) -> {
            if (failed == null) {
                all.complete(answers.stream().map(CompletableFuture::join).toList());
            } else {
                all.completeExceptionally(failureOf(failed));
            }
        });
        all.whenComplete((done, failed) -> {
            if (all.isCancelled()) {
                cancel();
            }
        });
        return all;
    }

    /** Gives the whole call up: its requests still waiting leave their batches, its answers are cancelled. */
    public void cancel() {
        failWhole(new CancellationException("the call was given up"));
    }

    /** The first failure is the call's: every answer not yet given fails with it, and the requests still waiting leave. */
    private void failWhole(Throwable cause) {
        failure.compareAndSet(null, cause);
        Throwable first = failure.get();
        answers.forEach(answer -> answer.completeExceptionally(first));
        queued.forEach(request -> request.cancel(false));
    }
}
