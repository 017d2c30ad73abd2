package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class FanOutTest {

    @Test
    void eachPromptGetsItsOwnAnswerInOrderWithItsPosition() {
        List<String> seen = new CopyOnWriteArrayList<>();

        var outcomes = FanOut.complete(List.of("a", "b", "c"), (position, prompt) -> {
            seen.add(position + prompt);
            return generated(prompt);
        });

        assertThat(outcomes).containsExactly(generated("a"), generated("b"), generated("c"));
        assertThat(seen).containsExactlyInAnyOrder("0a", "1b", "2c");
    }

    @Test
    void aLonePromptIsCompletedOnTheCallersThread() {
        var caller = Thread.currentThread();

        var outcomes = FanOut.complete(List.of("a"), prompt -> {
            assertThat(Thread.currentThread()).isSameAs(caller);
            return generated(prompt);
        });

        assertThat(outcomes).containsExactly(generated("a"));
    }

    @Test
    void aFailedCallFailsItsPromptAloneAndABugIsABadAnswer() {
        var down = new WorkerException.Unavailable("reset");

        var outcomes = FanOut.complete(List.of("ok", "down", "bug"), prompt -> switch (prompt) {
            case "down" -> throw down;
            case "bug" -> throw new IllegalStateException("oops");
            default -> generated(prompt);
        });

        assertThat(outcomes.get(0)).isEqualTo(generated("ok"));
        assertThat(outcomes.get(1)).isEqualTo(new WorkerOutcome.Failed(down));
        assertThat(outcomes.get(2)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker adapter failed: java.lang.IllegalStateException: oops")
                .hasCauseInstanceOf(IllegalStateException.class));
    }

    @Test
    void whenEveryCallFailsTheBatchFailsWithTheFirstFailure() {
        var first = new WorkerException.Unavailable("first");
        var second = new WorkerException.Unavailable("second");

        assertThatThrownBy(() -> FanOut.complete(List.of("1", "2"), prompt -> {
            throw prompt.equals("1") ? first : second;
        })).isSameAs(first);
    }

    @Test
    void whenEveryCallFailsButAPromptWasRefusedEachPromptKeepsItsOwnFailure() {
        var refused = new WorkerException.Rejected("too long");
        var down = new WorkerException.Unavailable("down");

        var outcomes = FanOut.complete(List.of("long", "x"), prompt -> {
            throw prompt.equals("long") ? refused : down;
        });

        assertThat(outcomes).containsExactly(new WorkerOutcome.Failed(refused), new WorkerOutcome.Failed(down));
    }

    @Test
    void anInterruptedFanOutAbandonsEveryCallAndKeepsTheInterrupt() throws Exception {
        // Given calls that hang until interrupted
        var started = new CountDownLatch(2);
        var abandoned = new CountDownLatch(2);
        var thrown = new AtomicReference<Throwable>();
        var stillInterrupted = new AtomicReference<Boolean>();
        var caller = Thread.ofVirtual().start(() -> {
            try {
                FanOut.complete(List.of("1", "2"), prompt -> {
                    started.countDown();
                    try {
                        new CountDownLatch(1).await();
                    } catch (InterruptedException e) {
                        abandoned.countDown();
                    }
                    throw new WorkerException.TimedOut("interrupted");
                });
            } catch (RuntimeException e) {
                thrown.set(e);
                stillInterrupted.set(Thread.currentThread().isInterrupted());
            }
        });
        assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();

        // When the caller is interrupted
        caller.interrupt();
        assertThat(caller.join(java.time.Duration.ofSeconds(10))).isTrue();

        // Then every call was abandoned, and the fan-out ended as timed out with the interrupt kept
        assertThat(abandoned.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(thrown.get()).isInstanceOf(WorkerException.TimedOut.class).hasMessage("the calls to the worker were abandoned");
        assertThat(stillInterrupted.get()).isTrue();
    }

    private static WorkerOutcome.Generated generated(String prompt) {
        return new WorkerOutcome.Generated("re: " + prompt, new TokenUsage(1, 2), FinishReason.STOP);
    }
}
