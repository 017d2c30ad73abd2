package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntSupplier;
import org.junit.jupiter.api.Test;

/**
 * A call's life from admission to its answers: all or none at admission, given back when the scheduler does not take
 * it, failing whole, failures unwrapped once.
 */
class CompletionsTest {

    private static final long USER = 7;
    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final CallerPresence PRESENT = () -> true;

    private final HoldingScheduler scheduler = new HoldingScheduler();
    private final SpyAdmission admission = new SpyAdmission(scheduler.queued::size);
    private final Completions completions = new Completions(admission, scheduler);

    @Test
    void aCallIsAdmittedWholeThenEachRequestIsQueuedInOrderWithItsWait() {
        // Given a call of three requests, waited for whole
        var requests = requests(3);
        var payer = new Payer.LimitedKey(USER, UUID.randomUUID(), 100L, null, 5L);

        // When it is submitted
        var answers = completions.submit(new Call(payer, requests, Submission.whole(TIMEOUT, PRESENT)));

        // Then admission saw the whole call once, before the scheduler saw any of it; each request was queued in order
        assertThat(admission.admitted).containsExactly(new Admitted(payer, requests, 0));
        assertThat(scheduler.queued).extracting(Queued::request).containsExactlyElementsOf(requests);
        assertThat(scheduler.queued).allSatisfy(queued -> {
            assertThat(queued.timeout()).isEqualTo(TIMEOUT);
            assertThat(queued.presence()).isSameAs(PRESENT);
            assertThat(queued.deltas()).as("an answer waited for whole streams nothing").isNull();
        });
        assertThat(answers.each()).hasSize(3).noneMatch(CompletableFuture::isDone);
        assertThat(admission.released).isEmpty();
    }

    @Test
    void aCallRefusedAtAdmissionQueuesNothing() {
        // Given an admission that refuses (over a limit)
        var overLimit = new IllegalStateException("tokens_per_day is 100");
        admission.refuseWith(overLimit);

        // When a call is submitted, then the refusal itself is thrown, and the scheduler never saw the call
        assertThatThrownBy(() -> completions.submit(call(requests(2)))).isSameAs(overLimit);
        assertThat(scheduler.queued).isEmpty();
        assertThat(admission.released).as("admission is all or none: it reserved nothing").isEmpty();
    }

    @Test
    void aRequestTheSchedulerDoesNotTakeIsGivenBackWithEveryOneAfterItAndThoseTakenAreDropped() {
        // Given a scheduler whose queue fills after the first of three requests
        var full = new CompletionRejectedException(CompletionRejectedException.Reason.QUEUE_FULL, Duration.ofSeconds(1));
        scheduler.refuseFrom(1, full);
        var requests = requests(3);

        // When the call is submitted
        assertThatThrownBy(() -> completions.submit(call(requests))).isSameAs(full);

        // Then the two it did not take are released here, and the one it took is cancelled (it settles that one unbilled)
        assertThat(admission.released).containsExactlyInAnyOrder(requests.get(1), requests.get(2));
        assertThat(scheduler.futures.getFirst()).isCancelled();
    }

    @Test
    void aStreamedCallGivesEachRequestItsOwnDeltas() {
        // Given a call of two requests, streamed, each prompt's text to its own list
        List<List<String>> texts = List.of(new CopyOnWriteArrayList<>(), new CopyOnWriteArrayList<>());

        // When it is submitted and the scheduler reports text for each
        completions.submit(new Call(new Payer.User(USER), requests(2),
                Submission.streamed(TIMEOUT, PRESENT, index -> delta -> texts.get(index).add(delta))));
        scheduler.queued.get(1).deltas().text("second");
        scheduler.queued.get(0).deltas().text("first");

        // Then each request's text went to its own sink
        assertThat(texts.get(0)).containsExactly("first");
        assertThat(texts.get(1)).containsExactly("second");
    }

    @Test
    void anAnswerCompletesWithItsCompletionAndAllOnceEveryRequestIsAnswered() throws Exception {
        // Given a call of two requests
        var requests = requests(2);
        var answers = completions.submit(call(requests));
        var all = answers.all();

        // When the second is answered, then only its answer is done
        scheduler.futures.get(1).complete(completion(requests.get(1), "two"));
        assertThat(answers.each().get(1).get().text()).isEqualTo("two");
        assertThat(all).isNotDone();

        // When the first is, then all completes with both, in the call's order
        scheduler.futures.get(0).complete(completion(requests.get(0), "one"));
        assertThat(all.get()).extracting(Completion::text).containsExactly("one", "two");
    }

    @Test
    void aFailureIsTheDomainsOwnUnwrapped() {
        // Given a call whose request fails wrapped, as a dependent stage of the scheduler's future would
        var answers = completions.submit(call(requests(1)));
        var timedOut = new WorkerException.TimedOut("the worker did not answer within 1000 ms");
        var seen = new AtomicReference<Throwable>();
        answers.only().whenComplete((done, failure) -> seen.set(failure));

        // When the scheduler's future fails with it wrapped
        scheduler.futures.getFirst().completeExceptionally(new CompletionException(timedOut));

        // Then the answer fails with the worker's failure itself
        assertThat(seen.get()).isSameAs(timedOut);
        assertThat(answers.all().exceptionNow()).isSameAs(timedOut);
    }

    @Test
    void theFirstFailureFailsTheWholeCallAndDropsTheRequestsStillWaiting() {
        // Given a call of three requests, the first already answered
        var requests = requests(3);
        var answers = completions.submit(call(requests));
        var all = answers.all();
        scheduler.futures.get(0).complete(completion(requests.get(0), "one"));

        // When the second passes its deadline
        var late = new DeadlineExceededException(TIMEOUT);
        scheduler.futures.get(1).completeExceptionally(late);

        // Then every answer not yet given fails with that failure, the third leaves its batch, and the first keeps its answer
        assertThat(answers.each().get(1).exceptionNow()).isSameAs(late);
        assertThat(answers.each().get(2).exceptionNow()).isSameAs(late);
        assertThat(scheduler.futures.get(2)).as("the third request is dropped at the scheduler").isCancelled();
        assertThat(answers.each().get(0).resultNow().text()).isEqualTo("one");
        assertThat(all.exceptionNow()).isSameAs(late);
    }

    @Test
    void aCallerWhoLeavesOrGivesOneAnswerUpGivesTheWholeCallUp() {
        // Given two calls of two requests each
        var first = completions.submit(call(requests(2)));
        var second = completions.submit(call(requests(2)));

        // When the scheduler drops a request of the first because its caller has gone
        scheduler.futures.get(0).cancel(false);
        // and the caller of the second gives up its wait for one answer
        second.each().get(1).cancel(false);

        // Then every request of both calls leaves its batch, and every answer says the caller has gone
        assertThat(scheduler.futures).allMatch(CompletableFuture::isCancelled);
        assertThat(first.each()).allMatch(CompletableFuture::isCancelled);
        assertThat(second.each()).allMatch(CompletableFuture::isCancelled);
    }

    @Test
    void cancellingAllOrTheCallDropsItsRequests() {
        var byAll = completions.submit(call(requests(2)));
        byAll.all().cancel(false);
        assertThat(scheduler.futures.subList(0, 2)).allMatch(CompletableFuture::isCancelled);

        var byCall = completions.submit(call(requests(2)));
        byCall.cancel();
        assertThat(scheduler.futures.subList(2, 4)).allMatch(CompletableFuture::isCancelled);
        assertThat(byCall.each()).allMatch(CompletableFuture::isCancelled);
    }

    @Test
    void aFailureIsUnwrappedOnceOnly() {
        var cause = new WorkerException.BadAnswer("status 500");
        assertThat(Answers.failureOf(new CompletionException(cause))).isSameAs(cause);
        assertThat(Answers.failureOf(new ExecutionException(cause))).isSameAs(cause);
        var twice = new ExecutionException(cause);
        assertThat(Answers.failureOf(new CompletionException(twice))).isSameAs(twice);
        assertThat(Answers.failureOf(cause)).isSameAs(cause);
    }

    @Test
    void aCallHoldsOnlyItsPayersRequestsAndAtLeastOne() {
        var others = new CompletionRequest(UUID.randomUUID(), USER + 1, "hi", new GenerationParameters(8));
        assertThatThrownBy(() -> call(List.of(requests(1).getFirst(), others)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("holds a request of user 8");
        assertThatThrownBy(() -> call(List.of())).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Payer.LimitedKey(USER, UUID.randomUUID(), -1L, null, null))
                .isInstanceOf(IllegalArgumentException.class);
    }

    // --- helpers and doubles

    private static Call call(List<CompletionRequest> requests) {
        return new Call(new Payer.User(USER), requests, Submission.whole(TIMEOUT, PRESENT));
    }

    private static List<CompletionRequest> requests(int count) {
        List<CompletionRequest> requests = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            requests.add(new CompletionRequest(UUID.randomUUID(), USER, "prompt " + i, new GenerationParameters(8)));
        }
        return requests;
    }

    private static Completion completion(CompletionRequest request, String text) {
        return new Completion(request.requestId(), text, new TokenUsage(1, 1), FinishReason.STOP);
    }

    /** @param queuedBefore how many requests the scheduler had been given when the call was admitted */
    record Admitted(Payer payer, List<CompletionRequest> requests, int queuedBefore) {}

    /** Records what it admits and releases; refuses when told to. */
    static final class SpyAdmission implements Admission {
        final List<Admitted> admitted = new CopyOnWriteArrayList<>();
        final List<CompletionRequest> released = new CopyOnWriteArrayList<>();
        private final IntSupplier queued;
        private RuntimeException refusal;

        SpyAdmission(IntSupplier queued) {
            this.queued = queued;
        }

        void refuseWith(RuntimeException refusal) {
            this.refusal = refusal;
        }

        @Override
        public void admit(Payer payer, List<CompletionRequest> requests) {
            if (refusal != null) {
                throw refusal;
            }
            admitted.add(new Admitted(payer, List.copyOf(requests), queued.getAsInt()));
        }

        @Override
        public void release(CompletionRequest request) {
            released.add(request);
        }
    }

    /** What the scheduler was given for one request; {@code deltas} null when it was queued without a stream. */
    record Queued(CompletionRequest request, Duration timeout, CallerPresence presence, Deltas deltas) {}

    /** Takes every request and leaves its future for the test to complete, unless told to refuse from some request on. */
    static final class HoldingScheduler implements SchedulerApi {
        final List<Queued> queued = new CopyOnWriteArrayList<>();
        final List<CompletableFuture<Completion>> futures = new CopyOnWriteArrayList<>();
        private int refuseFrom = Integer.MAX_VALUE;
        private RuntimeException refusal;

        void refuseFrom(int taken, RuntimeException refusal) {
            this.refuseFrom = taken;
            this.refusal = refusal;
        }

        @Override
        public CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout) {
            throw new AssertionError("a call is queued with its caller's presence");
        }

        @Override
        public CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout, CallerPresence caller) {
            return take(new Queued(request, timeout, caller, null));
        }

        @Override
        public CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout, CallerPresence caller, Deltas deltas) {
            return take(new Queued(request, timeout, caller, deltas));
        }

        private CompletableFuture<Completion> take(Queued request) {
            if (futures.size() >= refuseFrom) {
                throw refusal;
            }
            queued.add(request);
            var future = new CompletableFuture<Completion>();
            futures.add(future);
            return future;
        }
    }
}
