package dev.batchgateway.web;

import dev.batchgateway.completion.CallerPresence;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.SchedulerApi;
import dev.batchgateway.completion.TokenUsage;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Answers every request at once with "echo: prompt" and one token per character, unless told to refuse
 * ({@link #rejectWith}), to fail ({@link #failWith}) or to hold its answers ({@link #hold}); records what it was asked,
 * and the caller check each request came with.
 */
public class StubScheduler implements SchedulerApi {

    public final List<CompletionRequest> requests = new CopyOnWriteArrayList<>();
    public final List<Duration> timeouts = new CopyOnWriteArrayList<>();
    public final List<CallerPresence> callers = new CopyOnWriteArrayList<>();
    /** The futures of the requests held unanswered, in order. */
    public final List<CompletableFuture<Completion>> held = new CopyOnWriteArrayList<>();
    private volatile RuntimeException rejection;
    private volatile RuntimeException failure;
    private volatile boolean holding;

    /** Makes {@code submit} throw, as the scheduler does when it does not take a request. */
    public void rejectWith(RuntimeException rejection) {
        this.rejection = rejection;
    }

    /** Makes the returned future fail, as it does when the worker or the deadline fails. */
    public void failWith(RuntimeException failure) {
        this.failure = failure;
    }

    /** Makes the returned futures stay pending, in {@link #held}, until the test completes or the caller cancels them. */
    public void hold() {
        this.holding = true;
    }

    public void reset() {
        requests.clear();
        timeouts.clear();
        callers.clear();
        held.clear();
        rejection = null;
        failure = null;
        holding = false;
    }

    @Override
    public CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout, CallerPresence caller) {
        callers.add(caller);
        return submit(request, timeout);
    }

    @Override
    public CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout) {
        requests.add(request);
        timeouts.add(timeout);
        if (rejection != null) {
            throw rejection;
        }
        if (failure != null) {
            return CompletableFuture.failedFuture(failure);
        }
        if (holding) {
            var pending = new CompletableFuture<Completion>();
            held.add(pending);
            return pending;
        }
        String text = switch (request.prompt()) {
            case Prompt.Text prompt -> prompt.text();
            case Prompt.Chat chat -> chat.messages().getLast().content();
            case Prompt.Embedding embedding -> embedding.input();
        };
        if (request.prompt() instanceof Prompt.Embedding) {
            // the first component is the input's length: tests can tell the inputs' vectors apart
            return CompletableFuture.completedFuture(Completion.embedded(request.requestId(),
                    new float[] {text.length(), 0.5f, -0.25f}, new TokenUsage(text.length(), 0)));
        }
        return CompletableFuture.completedFuture(new Completion(
                request.requestId(),
                "echo: " + text,
                new TokenUsage(text.length(), request.parameters().maxTokens()),
                FinishReason.STOP));
    }
}
