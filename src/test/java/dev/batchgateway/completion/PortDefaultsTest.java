package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** What the ports do for implementations that do not stream or check their callers themselves. */
class PortDefaultsTest {

    private final CompletionRequest request = SchedulerTest.request("hello");

    @Test
    void aSchedulerThatCannotStreamGivesTheWholeTextAsOnePiece() throws Exception {
        // Given a scheduler that only completes whole requests
        var answer = new CompletableFuture<Completion>();
        SchedulerApi scheduler = (request, timeout) -> answer;
        List<String> pieces = new CopyOnWriteArrayList<>();

        // When a streaming caller submits and the completion arrives
        var streamed = scheduler.submit(request, Duration.ofSeconds(5), CallerPresence.ASSUMED, pieces::add);
        answer.complete(completion("the whole text"));

        // Then the caller got the whole text as one piece, and the completion itself
        assertThat(pieces).containsExactly("the whole text");
        assertThat(streamed.getNow(null).text()).isEqualTo("the whole text");
    }

    @Test
    void anEmptyCompletionIsNoPieceAtAll() {
        // Given a scheduler that only completes whole requests
        SchedulerApi scheduler = (request, timeout) -> CompletableFuture.completedFuture(completion(""));
        List<String> pieces = new CopyOnWriteArrayList<>();

        // When its completion is empty
        var streamed = scheduler.submit(request, Duration.ofSeconds(5), CallerPresence.ASSUMED, pieces::add);

        // Then no piece was given, and the empty completion was
        assertThat(pieces).isEmpty();
        assertThat(streamed.getNow(null).text()).isEmpty();
    }

    @Test
    void cancellingTheStreamedFutureCancelsTheRequestItself() {
        // Given a request submitted for streaming to a scheduler that cannot stream
        var answer = new CompletableFuture<Completion>();
        SchedulerApi scheduler = (request, timeout) -> answer;
        var streamed = scheduler.submit(request, Duration.ofSeconds(5), CallerPresence.ASSUMED, delta -> {});

        // When the caller cancels
        streamed.cancel(false);

        // Then the scheduler's own future is cancelled too
        assertThat(answer).isCancelled();
    }

    @Test
    void aFailedRequestIsNotCancelledByItsStreamedFuture() {
        // Given a request submitted for streaming
        var answer = new CompletableFuture<Completion>();
        SchedulerApi scheduler = (request, timeout) -> answer;
        var streamed = scheduler.submit(request, Duration.ofSeconds(5), CallerPresence.ASSUMED, delta -> {});

        // When the request fails
        answer.completeExceptionally(new WorkerException.Unavailable("down"));

        // Then the streamed future fails the same way, and nothing is cancelled
        assertThat(streamed).isCompletedExceptionally().isNotCancelled();
        assertThat(answer).isNotCancelled();
    }

    @Test
    void aCallerCheckIsIgnoredBySchedulersThatCannotDropRequests() {
        // Given a scheduler that notes the timeout it is given
        var timeouts = new ArrayList<Duration>();
        var answer = CompletableFuture.completedFuture(completion("x"));
        SchedulerApi scheduler = (request, timeout) -> {
            timeouts.add(timeout);
            return answer;
        };

        // When a request is submitted with a caller check, and one without any timeout
        var checked = scheduler.submit(request, Duration.ofSeconds(3), () -> false);
        scheduler.submit(request);

        // Then the first is submitted as is, and the second waits as long as the gateway lets it
        assertThat(checked).isSameAs(answer);
        assertThat(timeouts).containsExactly(Duration.ofSeconds(3), ChronoUnit.FOREVER.getDuration());
    }

    @Test
    void completeGivesTheCompletionOrThrowsTheFailureItself() throws Exception {
        SchedulerApi served = (request, timeout) -> CompletableFuture.completedFuture(completion("done"));
        assertThat(served.complete(request).text()).isEqualTo("done");

        var down = new WorkerException.Unavailable("down");
        SchedulerApi failing = (request, timeout) -> CompletableFuture.failedFuture(down);
        assertThatThrownBy(() -> failing.complete(request)).isSameAs(down);

        var checked = new IOException("not a runtime exception");
        SchedulerApi oddlyFailing = (request, timeout) -> CompletableFuture.failedFuture(checked);
        assertThatThrownBy(() -> oddlyFailing.complete(request)).isInstanceOf(CompletionException.class).hasCause(checked);
    }

    @Test
    void anInterruptedCompleteCancelsItsRequest() throws Exception {
        // Given a request that is never answered
        var answer = new CompletableFuture<Completion>();
        SchedulerApi scheduler = (request, timeout) -> answer;

        // When the waiting thread is interrupted
        var thrown = new AtomicReference<Throwable>();
        var waiter = Thread.ofVirtual().start(() -> {
            try {
                scheduler.complete(request);
            } catch (Throwable e) {
                thrown.set(e);
            }
        });
        SchedulerTest.awaitCondition(() -> waiter.getState() == Thread.State.WAITING);
        waiter.interrupt();
        waiter.join(Duration.ofSeconds(10));

        // Then it stops waiting, and the request is cancelled
        assertThat(thrown.get()).isInstanceOf(InterruptedException.class);
        assertThat(answer).isCancelled();
    }

    @Test
    void aWorkerThatCannotStreamReportsEachGeneratedPromptOnceItIsDone() {
        // Given a worker that generates the first and third prompts, fails the second and leaves the last empty
        WorkerApi worker = new WorkerApi() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                return List.of(
                        new WorkerOutcome.Generated("one", new TokenUsage(1, 1), FinishReason.STOP),
                        new WorkerOutcome.Failed(new WorkerException.Rejected("too long")),
                        new WorkerOutcome.Generated("three", new TokenUsage(3, 3), FinishReason.LENGTH),
                        new WorkerOutcome.Generated("", new TokenUsage(4, 0), FinishReason.STOP));
            }

            @Override
            public String model() {
                return "m";
            }
        };
        var progress = new NotingProgress();

        // When a batch is completed with progress
        var outcomes = worker.complete(batch(4), progress);

        // Then every generated prompt was counted, and each non-empty text reported once, in order
        assertThat(outcomes).hasSize(4);
        assertThat(progress.noted).containsExactly(
                "0 counted 1+1", "0 text one", "2 counted 3+3", "2 text three", "3 counted 4+0");
    }

    @Test
    void aWorkerThatAnswersTooManyOrNothingReportsOnlyWhatFitsTheBatch() {
        var progress = new NotingProgress();
        WorkerApi tooMany = worker(List.of(
                new WorkerOutcome.Generated("one", new TokenUsage(1, 1), FinishReason.STOP),
                new WorkerOutcome.Generated("two", new TokenUsage(2, 2), FinishReason.STOP)));
        assertThat(tooMany.complete(batch(1), progress)).hasSize(2);
        assertThat(progress.noted).containsExactly("0 counted 1+1", "0 text one");

        var nothing = new NotingProgress();
        assertThat(worker(null).complete(batch(1), nothing)).isNull();
        assertThat(nothing.noted).isEmpty();
    }

    @Test
    void progressOfASubListMapsEachPositionToTheWholeBatch() {
        // Given the progress of a batch of five, and the part of it at positions 3 and 1
        var whole = new NotingProgress();
        var part = whole.of(3, 1);

        // When the part reports on its two prompts
        assertThat(part.text(0, "a")).isTrue();
        part.counted(1, new TokenUsage(2, 5));

        // Then the whole heard of positions 3 and 1, and streams as the whole does
        assertThat(whole.noted).containsExactly("3 text a", "1 counted 2+5");
        assertThat(part.streamed()).isTrue();
        assertThat(BatchProgress.IGNORED.of(0).streamed()).isFalse();
    }

    @Test
    void nobodyListensToIgnoredProgress() {
        assertThat(BatchProgress.IGNORED.streamed()).isFalse();
        assertThat(BatchProgress.IGNORED.text(0, "x")).isTrue();
    }

    // --- helpers

    private static final class NotingProgress implements BatchProgress {
        final List<String> noted = new CopyOnWriteArrayList<>();

        @Override
        public boolean text(int prompt, String delta) {
            noted.add(prompt + " text " + delta);
            return true;
        }

        @Override
        public void counted(int prompt, TokenUsage soFar) {
            noted.add(prompt + " counted " + soFar.promptTokens() + "+" + soFar.completionTokens());
        }
    }

    private static WorkerApi worker(List<WorkerOutcome> outcomes) {
        return new WorkerApi() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                return outcomes;
            }

            @Override
            public String model() {
                return "m";
            }
        };
    }

    private static Batch batch(int size) {
        var prompts = new ArrayList<String>();
        for (int i = 0; i < size; i++) {
            prompts.add("p" + i);
        }
        return new Batch(1, new GenerationParameters(8), prompts);
    }

    private Completion completion(String text) {
        return new Completion(request.requestId(), text, new TokenUsage(1, 1), FinishReason.STOP);
    }
}
