package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** How the scheduler stops: within its grace period, or by giving up on what has not finished — never leaving a caller waiting. */
class SchedulerShutdownTest {

    private static final long SLACK_SECONDS = 10;

    private final SpyUsageRepository usage = new SpyUsageRepository();
    private final UsageLedger ledger =
            new UsageLedger(usage, 1000, 100, Duration.ofMillis(5), Duration.ofMillis(50), Ticker.system(), UsageEvents.NONE)
                    .start();

    @AfterEach
    void closeLedger() throws InterruptedException {
        ledger.close(Duration.ZERO);
    }

    @Test
    void shutdownWaitsWithinItsGraceForABatchInFlight() throws Exception {
        // Given a batch in flight at a worker that answers 300 ms after it is called
        var called = new CountDownLatch(1);
        WorkerApi worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                called.countDown();
                try {
                    Thread.sleep(300); // the worker's working time under test, not a synchronisation
                } catch (InterruptedException e) {
                    throw new WorkerException.TimedOut("interrupted", e);
                }
                return super.complete(batch);
            }
        };
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        var inFlight = scheduler.submit(SchedulerTest.request("in flight"));
        assertThat(called.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

        // When the scheduler shuts down with a grace period that is long enough
        boolean finished = scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS));

        // Then it reports finishing in time, and the caller got its completion
        assertThat(finished).isTrue();
        assertThat(inFlight.getNow(null)).isNotNull().extracting(Completion::text).isEqualTo("completed: in flight");
    }

    @Test
    void shutdownGivesUpAfterItsGraceAndAnswersEveryoneStillWaiting() throws Exception {
        // Given the only batch slot held by a call that hangs until interrupted, a partial batch waiting in the loop
        // for a slot, and one more request behind it in the queue
        var loopReads = new java.util.concurrent.atomic.AtomicInteger();
        Ticker noted = () -> {
            if (Thread.currentThread().getName().equals("batch-loop")) {
                loopReads.incrementAndGet();
            }
            return System.nanoTime();
        };
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var scheduler = new Scheduler(worker, ledger,
                new SchedulerPolicy(2, Duration.ZERO, 1, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)),
                noted, Clock.systemUTC(), SchedulerEvents.NONE).start();
        var hung = scheduler.submit(SchedulerTest.request("hang"));
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);
        int readsBefore = loopReads.get();
        var waitingForASlot = scheduler.submit(SchedulerTest.request("waiting for a slot"));
        // the loop reads its clock when it decides the partial batch is due: from then on it takes nothing new
        SchedulerTest.awaitCondition(() -> loopReads.get() > readsBefore);
        var behind = scheduler.submit(SchedulerTest.request("behind"));

        // When the scheduler shuts down with a short grace period
        long started = System.nanoTime();
        boolean finished = scheduler.shutdown(Duration.ofMillis(300));

        // Then it reports not finishing, without waiting much longer than its grace
        assertThat(finished).isFalse();
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(SLACK_SECONDS));
        // and the waiting requests are turned away as shutting down, and the abandoned call fails
        assertThat(failureOf(waitingForASlot)).isInstanceOfSatisfying(CompletionRejectedException.class,
                rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.SHUTTING_DOWN));
        assertThat(failureOf(behind)).isInstanceOfSatisfying(CompletionRejectedException.class,
                rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.SHUTTING_DOWN));
        assertThat(failureOf(hung)).isInstanceOf(WorkerException.class);
        assertThat(worker.abandoned.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        // and none of them reached the worker
        assertThat(worker.prompts()).containsExactly("hang");
    }

    @Test
    void aFullBatchWaitingForASlotWhenTheGraceEndsIsAnsweredToo() throws Exception {
        // Given the only batch slot held by a call that hangs, and a full batch of one waiting for the slot
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 1, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        scheduler.submit(SchedulerTest.request("hang"));
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);
        var waitingForASlot = scheduler.submit(SchedulerTest.request("waiting for a slot"));
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 1);

        // When the scheduler shuts down with a short grace period
        assertThat(scheduler.shutdown(Duration.ofMillis(300))).isFalse();

        // Then the waiting request is turned away, not left waiting for ever
        assertThat(failureOf(waitingForASlot)).isInstanceOfSatisfying(CompletionRejectedException.class,
                rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.SHUTTING_DOWN));
    }

    @Test
    void aBrokenBatchLoopFailsEveryWaitingRequestAndTakesNoMore() throws Exception {
        // Given a ticker that breaks when the batch loop reads it
        Ticker broken = () -> {
            if (Thread.currentThread().getName().equals("batch-loop")) {
                throw new IllegalStateException("the clock broke");
            }
            return System.nanoTime();
        };
        var scheduler = new Scheduler(new SpyWorker(), ledger,
                new SchedulerPolicy(8, Duration.ofSeconds(30), 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)),
                broken, Clock.systemUTC(), SchedulerEvents.NONE);
        var first = scheduler.submit(SchedulerTest.request("first"));
        var second = scheduler.submit(SchedulerTest.request("second"));

        // When the loop starts and breaks on its first pass
        scheduler.start();

        // Then every request it held fails as unavailable, naming why
        for (var completion : List.of(first, second)) {
            assertThat(failureOf(completion)).isInstanceOf(WorkerException.Unavailable.class)
                    .hasMessage("the batch loop stopped")
                    .cause().hasMessage("the clock broke");
        }
        // and no more requests are taken
        assertThatThrownBy(() -> scheduler.submit(SchedulerTest.request("later")))
                .isInstanceOfSatisfying(CompletionRejectedException.class,
                        rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.SHUTTING_DOWN));
        scheduler.shutdown(Duration.ofSeconds(1));
    }

    // --- helpers

    private Scheduler start(WorkerApi worker, SchedulerPolicy policy) {
        return new Scheduler(worker, ledger, policy, Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();
    }

    private static Throwable failureOf(CompletableFuture<Completion> completion) throws Exception {
        try {
            completion.get(SLACK_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (TimeoutException e) {
            throw new AssertionError("the request was neither answered nor failed within " + SLACK_SECONDS + " s");
        }
        throw new AssertionError("the request succeeded");
    }
}
