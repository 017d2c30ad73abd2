package dev.batchgateway.completion;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * Owns a call from admission to its answers: admits its requests through {@link Admission}, all or none, queues each
 * with the scheduler, which settles each through its {@link Settlement} port once it ends, and gives back what the
 * scheduler did not take. Every entry point goes through here, so none can forget a release.
 */
public final class Completions implements CompletionsApi {

    private final Admission admission;
    private final SchedulerApi scheduler;

    public Completions(Admission admission, SchedulerApi scheduler) {
        this.admission = Objects.requireNonNull(admission, "admission");
        this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
    }

    /**
     * {@inheritDoc}
     *
     * <p>A request the scheduler does not take (queue full, shutting down), or that fails before it is taken, is released
     * with every request after it, and those already taken are cancelled, which drops them unsent and settles them
     * unbilled.
     */
    @Override
    public Answers submit(Call call) {
        List<CompletionRequest> requests = call.requests();
        admission.admit(call.payer(), requests);
        List<CompletableFuture<Completion>> taken = new ArrayList<>(requests.size());
        try {
            for (int i = 0; i < requests.size(); i++) {
                taken.add(queue(requests.get(i), call.submission(), i));
            }
        } catch (RuntimeException | Error notTaken) {
            // the scheduler settles what it took (cancelled: unbilled); what it never took is given back here
            requests.subList(taken.size(), requests.size()).forEach(admission::release);
            taken.forEach(queued -> queued.cancel(false));
            throw notTaken;
        }
        return new Answers(taken);
    }

    private CompletableFuture<Completion> queue(CompletionRequest request, Submission submission, int index) {
        Deltas deltas = submission.deltasOf(index);
        return deltas == Deltas.NONE
                ? scheduler.submit(request, submission.timeout(), submission.presence())
                : scheduler.submit(request, submission.timeout(), submission.presence(), deltas);
    }
}
