package dev.batchgateway.web;

import dev.batchgateway.completion.Answers;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import org.springframework.web.context.request.async.AsyncRequestTimeoutException;
import org.springframework.web.context.request.async.DeferredResult;

/**
 * An answer the container waits for without a thread: the controller returns it as a {@link DeferredResult}, its request
 * thread ends, and the container writes the answer when the scheduler completes it. A parked request thread held its
 * whole stack on the heap, about 13 KB a caller (10,000 callers in flight: 106 MB of a 256 MB heap, issue 32). A
 * streamed answer is waited for the same way: its answer is the {@link EventStream}, which then writes itself.
 */
final class AnswerWait {

    /** The wait's own limit is only a safety net behind the scheduler's deadlines: how far behind. */
    private static final long SAFETY_MARGIN_SECONDS = 10;

    private final long safetyNetMillis;

    /** @param requestTimeout the scheduler's deadline; the wait gives up {@value #SAFETY_MARGIN_SECONDS} s after it */
    static AnswerWait behind(Duration requestTimeout) {
        return new AnswerWait(requestTimeout.plusSeconds(SAFETY_MARGIN_SECONDS));
    }

    AnswerWait(Duration safetyNet) {
        this.safetyNetMillis = safetyNet.toMillis();
    }

    /**
     * The answer in the shape the controller gives it, or its failure for the exception handlers: a cancelled answer
     * (the caller has gone) as {@link CallerGoneException}, any other as the exception it failed with. An answer not
     * known within the safety net is given up ({@link AsyncRequestTimeoutException}), as is one whose connection the
     * container saw fail.
     *
     * @param answered runs once the answer is known, before the container has it (the connection is the container's
     *     again); it may run twice, when the safety net and the answer meet
     */
    <T, R> DeferredResult<R> answer(CompletableFuture<T> answer, Function<? super T, ? extends R> shaped, Runnable answered) {
        var result = new DeferredResult<R>(safetyNetMillis);
        result.onTimeout(() -> {
            answered.run();
            result.setErrorResult(new AsyncRequestTimeoutException());
            answer.cancel(false); // nobody will take it: give its place in the queue to someone who will
        });
        result.onError(failed -> answer.cancel(false));
        answer.whenComplete((value, failure) -> {
            answered.run();
            if (failure != null) {
                result.setErrorResult(Failure.thrown(Answers.failureOf(failure)));
                return;
            }
            try {
                result.setResult(shaped.apply(value));
            } catch (RuntimeException unshaped) {
                result.setErrorResult(unshaped);
            }
        });
        return result;
    }
}
