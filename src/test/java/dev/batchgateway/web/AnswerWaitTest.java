package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.DeadlineExceededException;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockAsyncContext;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.web.context.request.async.AsyncRequestTimeoutException;
import org.springframework.web.context.request.async.DeferredResult;
import org.springframework.web.context.request.async.StandardServletAsyncWebRequest;
import org.springframework.web.context.request.async.WebAsyncManager;
import org.springframework.web.context.request.async.WebAsyncUtils;

class AnswerWaitTest {

    private final AtomicInteger answered = new AtomicInteger();
    private final AnswerWait wait = new AnswerWait(Duration.ofMillis(200));

    private DeferredResult<Object> answer(CompletableFuture<String> answer) {
        return wait.answer(answer, Function.identity(), answered::incrementAndGet);
    }

    @Test
    void theAnswerIsShapedWhenItComesAndTheCallerMarkedAnsweredFirst() {
        var pending = new CompletableFuture<String>();
        var result = wait.answer(pending, text -> {
            assertThat(answered).as("marked answered before the container has the answer").hasValue(1);
            return text.toUpperCase();
        }, answered::incrementAndGet);
        assertThat(result.hasResult()).isFalse();

        pending.complete("text");

        assertThat(result.getResult()).isEqualTo("TEXT");
        assertThat(answered).hasValue(1);
    }

    @Test
    void aFailureIsTheResultItself() {
        var deadline = new DeadlineExceededException(Duration.ofSeconds(1));
        assertThat(answer(CompletableFuture.failedFuture(deadline)).getResult()).isSameAs(deadline);
        // a stage that wrapped it: still the failure itself
        assertThat(answer(CompletableFuture.<String>failedFuture(deadline).thenApply(x -> x)).getResult()).isSameAs(deadline);
        // a checked failure, wrapped once
        assertThat(answer(CompletableFuture.failedFuture(new IOException("x"))).getResult())
                .isInstanceOf(CompletionException.class)
                .extracting(failure -> ((Throwable) failure).getCause()).isInstanceOf(IOException.class);
        assertThat(answered).hasValue(3);
    }

    @Test
    void aCancelledAnswerMeansTheCallerHasGone() {
        var cancelled = new CompletableFuture<String>();
        cancelled.cancel(false);
        assertThat(answer(cancelled).getResult()).isInstanceOf(CallerGoneException.class);
        assertThat(answered).hasValue(1);
    }

    @Test
    void anAnswerThatCannotBeShapedIsThatFailure() {
        var unshaped = new IllegalStateException("no completion");
        var result = wait.answer(CompletableFuture.completedFuture("text"), text -> {
            throw unshaped;
        }, answered::incrementAndGet);
        assertThat(result.getResult()).isSameAs(unshaped);
    }

    @Test
    void anAnswerThatNeverComesIsGivenUpWhenTheContainerTimesItOutAtTheSafetyNet() throws IOException {
        var never = new CompletableFuture<String>();
        var request = new AsyncRequest(answer(never));
        assertThat(request.timeoutMillis()).isEqualTo(200);

        request.each(listener -> listener.onTimeout(request.event()));

        assertThat(request.manager.getConcurrentResult()).isInstanceOf(AsyncRequestTimeoutException.class);
        assertThat(never).isCancelled();
        assertThat(answered.get()).isPositive();
    }

    @Test
    void aConnectionTheContainerSawFailGivesTheAnswerUp() throws IOException {
        var pending = new CompletableFuture<String>();
        var request = new AsyncRequest(answer(pending));

        request.each(listener -> listener.onError(request.event()));

        assertThat(pending).isCancelled();
    }

    @Test
    void theSafetyNetIsTenSecondsBehindTheRequestTimeout() {
        var result = AnswerWait.behind(Duration.ofSeconds(5)).answer(new CompletableFuture<>(), Function.identity(), () -> {});
        assertThat(new AsyncRequest(result).timeoutMillis()).isEqualTo(15_000);
    }

    /** A request whose answer is processed as Spring MVC does it, in a mock container that times out or fails on cue. */
    private static final class AsyncRequest {

        private final MockHttpServletRequest request = new MockHttpServletRequest();
        private final WebAsyncManager manager;

        AsyncRequest(DeferredResult<?> result) {
            request.setAsyncSupported(true);
            manager = WebAsyncUtils.getAsyncManager(request);
            manager.setAsyncWebRequest(new StandardServletAsyncWebRequest(request, new MockHttpServletResponse()));
            try {
                manager.startDeferredResultProcessing(result);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }

        long timeoutMillis() {
            return request.getAsyncContext().getTimeout();
        }

        AsyncEvent event() {
            return new AsyncEvent(request.getAsyncContext(), new IOException("the container's"));
        }

        void each(ListenerCall call) throws IOException {
            for (AsyncListener listener : ((MockAsyncContext) request.getAsyncContext()).getListeners()) {
                call.on(listener);
            }
        }
    }

    private interface ListenerCall {
        void on(AsyncListener listener) throws IOException;
    }
}
