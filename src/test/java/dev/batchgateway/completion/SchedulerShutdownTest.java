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

    @Test
    void aRequestThatPassedTheGateAsShutdownBeganIsSentInTheLastBatches() throws Exception {
        // Given a batch in flight that holds shutdown in its wait for the batches, and a ticker that pauses one caller's
        // submit after it passed the shutdown check, and tells when shutdown waits for that submission (its second
        // reading)
        var enteredSubmit = new CountDownLatch(1);
        var resumeSubmit = new CountDownLatch(1);
        var shutdownWaits = new CountDownLatch(1);
        var shutdownReadings = new java.util.concurrent.atomic.AtomicInteger();
        Ticker pausing = () -> {
            String thread = Thread.currentThread().getName();
            if (thread.equals("late-caller") && enteredSubmit.getCount() > 0) {
                enteredSubmit.countDown();
                awaitLatch(resumeSubmit);
            } else if (thread.equals("shutting-down") && shutdownReadings.incrementAndGet() == 2) {
                shutdownWaits.countDown();
            }
            return System.nanoTime();
        };
        var release = new CountDownLatch(1);
        var called = new CountDownLatch(1);
        WorkerApi worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                called.countDown();
                awaitLatch(release);
                return super.complete(batch);
            }
        };
        var scheduler = new Scheduler(worker, ledger,
                new SchedulerPolicy(1, Duration.ZERO, 2, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)),
                pausing, Clock.systemUTC(), SchedulerEvents.NONE).start();
        var inFlight = scheduler.submit(SchedulerTest.request("in flight"));
        assertThat(called.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

        // When a caller passes the shutdown check, and shutdown begins before the caller queues
        var late = new CompletableFuture<CompletableFuture<Completion>>();
        Thread.ofPlatform().name("late-caller").start(() -> late.complete(scheduler.submit(SchedulerTest.request("late"))));
        assertThat(enteredSubmit.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        var finished = new CompletableFuture<Boolean>();
        Thread.ofPlatform().name("shutting-down").start(() -> {
            try {
                finished.complete(scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS)));
            } catch (InterruptedException e) {
                finished.completeExceptionally(e);
            }
        });
        assertThat(shutdownWaits.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        resumeSubmit.countDown();
        release.countDown();

        // Then the late request is sent and answered, not turned away: shutdown waited for it before it stopped the loop
        assertThat(late.get(SLACK_SECONDS, TimeUnit.SECONDS).get(SLACK_SECONDS, TimeUnit.SECONDS)).isNotNull();
        // And everything finishes within the grace period
        assertThat(finished.get(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        assertThat(inFlight.getNow(null)).isNotNull();
    }

    @Test
    void aBatchTheLoopHandsOnAfterTheBatchesStoppedIsTurnedAway() throws Exception {
        // Given a caller check that holds the loop, past the grace period, until shutdown has stopped taking batches
        // (its second reading of the ticker, after it joined or gave up on the loop)
        var checked = new CountDownLatch(1);
        var loopInterrupted = new java.util.concurrent.atomic.AtomicBoolean();
        var batchesStopped = new CountDownLatch(1);
        var shutdownReadings = new java.util.concurrent.atomic.AtomicInteger();
        Ticker noting = () -> {
            if (Thread.currentThread().getName().equals("shutting-down") && shutdownReadings.incrementAndGet() == 2) {
                batchesStopped.countDown();
            }
            return System.nanoTime();
        };
        var worker = new SpyWorker();
        var scheduler = new Scheduler(worker, ledger,
                new SchedulerPolicy(1, Duration.ZERO, 2, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)),
                noting, Clock.systemUTC(), SchedulerEvents.NONE).start();
        var held = scheduler.submit(SchedulerTest.request("held"), Duration.ofSeconds(60), () -> {
            checked.countDown();
            boolean interrupted = false;
            while (true) {
                try {
                    if (batchesStopped.await(SLACK_SECONDS, TimeUnit.SECONDS)) {
                        break;
                    }
                    throw new AssertionError("shutdown never stopped the batches");
                } catch (InterruptedException e) {
                    interrupted = true; // the check answers quickly in production; here it outlives the interrupt
                }
            }
            if (interrupted) {
                loopInterrupted.set(true);
                Thread.currentThread().interrupt();
            }
            return true;
        });
        assertThat(checked.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

        // When the scheduler shuts down with a short grace period
        var finished = new CompletableFuture<Boolean>();
        Thread.ofPlatform().name("shutting-down").start(() -> {
            try {
                finished.complete(scheduler.shutdown(Duration.ofMillis(200)));
            } catch (InterruptedException e) {
                finished.completeExceptionally(e);
            }
        });

        // Then the request is turned away as shutting down, never sent, and shutdown reports the loop unfinished
        assertThat(failureOf(held)).isInstanceOfSatisfying(CompletionRejectedException.class,
                rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.SHUTTING_DOWN));
        assertThat(worker.batches).isEmpty();
        assertThat(finished.get(SLACK_SECONDS, TimeUnit.SECONDS)).isFalse();
        // and the loop that outlived the grace period was interrupted, and the refused batch gave its slot back
        assertThat(loopInterrupted).isTrue();
        assertThat(scheduler.batchesInFlight()).isZero();
    }

    @Test
    void aBatchWhoseCallersHaveAllGoneGivesBackItsSlot() throws Exception {
        // Given one batch slot, and a caller that has gone by the time its batch would leave
        var worker = new SpyWorker();
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 1, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        var gone = scheduler.submit(SchedulerTest.request("gone"), Duration.ofSeconds(60), () -> false);
        SchedulerTest.awaitCondition(gone::isCancelled);

        // When another request follows
        var next = scheduler.submit(SchedulerTest.request("next"));

        // Then it is served: the empty batch took no slot for good
        assertThat(next.get(SLACK_SECONDS, TimeUnit.SECONDS).text()).isEqualTo("completed: next");
        assertThat(worker.prompts()).containsExactly("next");
        assertThat(scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS))).isTrue();
    }

    @Test
    void aLoopThatBreaksWhileSendingFailsTheRequestsItHeldAndThoseQueuedBehind() throws Exception {
        // Given a caller check that queues one more request, after which the loop's clock breaks
        var broken = new java.util.concurrent.atomic.AtomicBoolean();
        Ticker breaking = () -> {
            if (broken.get() && Thread.currentThread().getName().equals("batch-loop")) {
                throw new IllegalStateException("the clock broke");
            }
            return System.nanoTime();
        };
        var scheduler = new Scheduler(new SpyWorker(), ledger,
                new SchedulerPolicy(2, Duration.ZERO, 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)),
                breaking, Clock.systemUTC(), SchedulerEvents.NONE).start();
        var behind = new CompletableFuture<CompletableFuture<Completion>>();
        var first = scheduler.submit(SchedulerTest.request("first"), Duration.ofSeconds(60), () -> {
            behind.complete(scheduler.submit(SchedulerTest.request("behind")));
            broken.set(true);
            return true;
        });

        // Then the request being sent and the one queued behind it both fail as unavailable
        assertThat(failureOf(first)).isInstanceOf(WorkerException.Unavailable.class).hasMessage("the batch loop stopped");
        assertThat(failureOf(behind.get(SLACK_SECONDS, TimeUnit.SECONDS))).isInstanceOf(WorkerException.Unavailable.class)
                .hasMessage("the batch loop stopped");
        scheduler.shutdown(Duration.ofSeconds(1));
    }

    // --- helpers

    private static void awaitLatch(CountDownLatch latch) {
        try {
            if (!latch.await(SLACK_SECONDS, TimeUnit.SECONDS)) {
                throw new AssertionError("the test never let it go on");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new WorkerException.TimedOut("interrupted", e);
        }
    }

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
