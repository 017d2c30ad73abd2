package dev.batchgateway.web;

import dev.batchgateway.budget.Budgets;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.KeyLimits;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The requests of one HTTP call, admitted against their user's budgets and taken by the scheduler, which from then on
 * settles each of them exactly once. The one place in the web layer where a reservation is made: call it only once the
 * whole request has been read and validated (every 400 decided), since nothing after it gives a reservation back but the
 * scheduler.
 *
 * <p>All or none: a request the scheduler does not take (queue full, shutting down) or that fails before it is taken is
 * released with every request after it, and those already taken are cancelled, which drops them unsent and settles
 * them unbilled.
 */
final class AdmittedCall {

    /** Hands one request of the call to the scheduler; {@code index} is its place in the call. */
    @FunctionalInterface
    interface Submission {
        CompletableFuture<Completion> submit(int index, CompletionRequest request);
    }

    private final List<CompletableFuture<Completion>> completions;

    private AdmittedCall(List<CompletableFuture<Completion>> completions) {
        this.completions = List.copyOf(completions);
    }

    /**
     * Admits the requests of {@code user}, made by {@code who} (429 or 503 when a limit of the user, or of the key with
     * limits of its own, or the budget store says no), then submits each.
     *
     * @throws RuntimeException whatever admission or a submission threw, with nothing left reserved by this call
     */
    static AdmittedCall admit(Budgets budgets, Caller who, long user, List<CompletionRequest> requests, Submission submission) {
        if (who instanceof Caller.User key && !key.limits().none()) {
            KeyLimits limits = key.limits();
            budgets.admit(user, Budgets.keyAccount(key.keyId()),
                    new Limits(limits.tokensPerDay(), limits.tokensPerMonth(), limits.requestsPerMinute()), requests);
        } else {
            budgets.admit(user, requests);
        }
        List<CompletableFuture<Completion>> taken = new ArrayList<>(requests.size());
        try {
            for (int i = 0; i < requests.size(); i++) {
                taken.add(submission.submit(i, requests.get(i)));
            }
        } catch (RuntimeException | Error notTaken) {
            // the scheduler settles what it took (cancelled: unbilled); what it never took is given back here
            requests.subList(taken.size(), requests.size()).forEach(budgets::release);
            taken.forEach(queued -> queued.cancel(false));
            throw notTaken;
        }
        return new AdmittedCall(taken);
    }

    /** Each request's completion, in the call's order. */
    List<CompletableFuture<Completion>> completions() {
        return completions;
    }

    /** The completion of a call of one request. */
    CompletableFuture<Completion> only() {
        if (completions.size() != 1) {
            throw new IllegalStateException("a call of " + completions.size() + " requests has no only completion");
        }
        return completions.getFirst();
    }

    /** The call fails whole: its requests still waiting leave their batches (and are settled unbilled). */
    void cancel() {
        completions.forEach(pending -> pending.cancel(false));
    }
}
