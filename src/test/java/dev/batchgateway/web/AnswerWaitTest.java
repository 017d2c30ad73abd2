package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.DeadlineExceededException;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.springframework.web.context.request.async.AsyncRequestTimeoutException;

class AnswerWaitTest {

    private final AtomicInteger answered = new AtomicInteger();
    private final AnswerWait wait = new AnswerWait(Duration.ofMillis(200));

    @Test
    void returnsTheAnswerAndMarksTheCallerAnswered() throws Exception {
        assertThat(wait.await(CompletableFuture.completedFuture("text"), answered::incrementAndGet)).isEqualTo("text");
        assertThat(answered).hasValue(1);
    }

    @Test
    void rethrowsTheFailureItself() {
        var deadline = new DeadlineExceededException(Duration.ofSeconds(1));
        assertThatThrownBy(() -> wait.await(CompletableFuture.failedFuture(deadline), answered::incrementAndGet)).isSameAs(deadline);
        // a stage that wrapped it: still the failure itself
        var wrapped = CompletableFuture.failedFuture(deadline).thenApply(x -> x);
        assertThatThrownBy(() -> wait.await(wrapped, answered::incrementAndGet)).isSameAs(deadline);
        // a checked failure, wrapped once
        assertThatThrownBy(() -> wait.await(CompletableFuture.failedFuture(new IOException("x")), answered::incrementAndGet))
                .isInstanceOf(CompletionException.class).hasCauseInstanceOf(IOException.class);
        assertThat(answered).hasValue(3);
    }

    @Test
    void aCancelledAnswerMeansTheCallerHasGone() {
        var cancelled = new CompletableFuture<String>();
        cancelled.cancel(false);
        assertThatThrownBy(() -> wait.await(cancelled, answered::incrementAndGet)).isInstanceOf(CallerGoneException.class);
        assertThat(answered).hasValue(1);
    }

    @Test
    void anAnswerThatNeverComesIsGivenUpAfterTheSafetyNet() {
        var never = new CompletableFuture<String>();
        assertThatThrownBy(() -> wait.await(never, answered::incrementAndGet)).isInstanceOf(AsyncRequestTimeoutException.class);
        assertThat(never).isCancelled();
        assertThat(answered).hasValue(1);
    }

    @Test
    void anInterruptedWaitGivesTheAnswerUp() throws Exception {
        var pending = new CompletableFuture<String>();
        var failure = new CompletableFuture<Throwable>();
        var waiting = Thread.ofVirtual().start(() -> {
            try {
                new AnswerWait(Duration.ofMinutes(5)).await(pending, answered::incrementAndGet);
            } catch (Throwable e) {
                failure.complete(e);
            }
        });
        waiting.interrupt();
        waiting.join(Duration.ofSeconds(30));
        assertThat(failure).isCompletedWithValueMatching(InterruptedException.class::isInstance);
        assertThat(pending).isCancelled();
        assertThat(answered).hasValue(1);
    }

    @Test
    void theSafetyNetIsTenSecondsBehindTheRequestTimeout() {
        var never = new CompletableFuture<String>();
        long started = System.nanoTime();
        assertThatThrownBy(() -> AnswerWait.behind(Duration.ofSeconds(-10).plusMillis(100)).await(never, () -> {}))
                .isInstanceOf(AsyncRequestTimeoutException.class);
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isGreaterThanOrEqualTo(Duration.ofMillis(100));
    }
}
