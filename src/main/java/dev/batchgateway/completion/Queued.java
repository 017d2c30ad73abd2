package dev.batchgateway.completion;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/** A request waiting in its lane for its batch, with the future its caller waits on. */
final class Queued {

    private static final System.Logger LOG = System.getLogger(Queued.class.getName());

    private enum Stage { QUEUED, SENT, DROPPED }

    final CompletionRequest request;
    final LaneId lane;
    final BatchKey key;
    /** What it weighs in its lane's fair share: its {@link TokenBound}. */
    final long cost;
    /** When the request reached the gateway: its max-wait counts from here. */
    final long arrivedAt;
    final CallerPresence caller;
    final Deltas deltas;
    final CompletableFuture<Completion> completion = new CompletableFuture<>();
    final AtomicBoolean left = new AtomicBoolean();
    /** Queued, then sent (its batch settles it) or dropped (settled unbilled), whichever comes first. */
    private final AtomicReference<Stage> stage = new AtomicReference<>(Stage.QUEUED);

    Queued(CompletionRequest request, LaneId lane, long arrivedAt, CallerPresence caller, Deltas deltas) {
        this.request = request;
        this.lane = lane;
        this.key = BatchKey.of(request);
        this.cost = TokenBound.of(request);
        this.arrivedAt = arrivedAt;
        this.caller = caller;
        this.deltas = deltas;
    }

    long userId() {
        return request.userId();
    }

    boolean streams() {
        return deltas != Deltas.NONE;
    }

    /** What became of this request, now that the worker generated tokens for it. */
    UsageOutcome outcome(UsageOutcome otherwise) {
        if (completion.isCancelled()) {
            return UsageOutcome.CLIENT_GONE;
        }
        if (completion.isCompletedExceptionally()
                && completion.exceptionNow() instanceof DeadlineExceededException) {
            return UsageOutcome.DEADLINE;
        }
        return otherwise;
    }

    boolean isDone() {
        return completion.isDone();
    }

    /** Asks the caller's check; a gone caller's future is cancelled. A failing check counts as present. */
    boolean callerGone() {
        boolean gone;
        try {
            gone = !caller.stillWaiting();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "the caller check failed; sending the request anyway", e);
            return false;
        }
        return gone && completion.cancel(false);
    }

    void fail(Throwable failure) {
        completion.completeExceptionally(failure);
    }

    /** Whether the request goes to the worker; false when it had already ended unsent. */
    boolean markSent() {
        return stage.compareAndSet(Stage.QUEUED, Stage.SENT);
    }

    /** Whether the request was marked sent: its settlement is its batch's to make. */
    boolean wasSent() {
        return stage.get() == Stage.SENT;
    }

    /** Whether the request ended before its batch left (and so is settled unbilled now). */
    boolean dropUnsent() {
        return stage.compareAndSet(Stage.QUEUED, Stage.DROPPED);
    }
}
