package dev.batchgateway.web;

import dev.batchgateway.completion.Answers;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.springframework.web.context.request.async.AsyncRequestTimeoutException;

/**
 * Waits for an answer on the request's own virtual thread: the controller returns it like any other value, so a
 * request is dispatched once (no {@code DeferredResult}, no second dispatch of an async result) and a waiting client
 * costs a parked virtual thread.
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
     * The answer, or its failure rethrown for the exception handlers: a cancelled answer (the caller has gone) as
     * {@link CallerGoneException}, any other as the exception it failed with.
     *
     * @param answered runs once the answer is known, before it is returned or thrown (the connection is the
     *     container's again)
     */
    <T> T await(CompletableFuture<T> answer, Runnable answered) throws InterruptedException {
        try {
            return answer.get(safetyNetMillis, TimeUnit.MILLISECONDS);
        } catch (ExecutionException failed) {
            throw Failure.thrown(Answers.failureOf(failed));
        } catch (CancellationException gone) {
            throw new CallerGoneException();
        } catch (TimeoutException | InterruptedException notAnswered) {
            answer.cancel(false); // nobody will take it: give its place in the queue to someone who will
            if (notAnswered instanceof InterruptedException interrupted) {
                throw interrupted;
            }
            throw new AsyncRequestTimeoutException();
        } finally {
            answered.run();
        }
    }
}
