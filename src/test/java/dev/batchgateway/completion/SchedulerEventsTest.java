package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** What the scheduler reports while it works, measured on a ticker the test moves, and when it tells callers to retry. */
class SchedulerEventsTest {

    private static final long SLACK_SECONDS = 10;

    private final ManualTicker ticker = new ManualTicker();
    private final RecordingEvents events = new RecordingEvents();
    private final SpyUsageRepository usage = new SpyUsageRepository();
    private final List<Scheduler> started = new ArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        for (Scheduler scheduler : started) {
            scheduler.shutdown(Duration.ofSeconds(1));
        }
    }

    @Test
    void aFullBatchReportsItsDispatchTimeInQueueAndLatency() throws Exception {
        // Given a worker that takes 7 ms of the test's time per batch
        var worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                ticker.advance(Duration.ofMillis(7));
                return super.complete(batch);
            }
        };
        var scheduler = start(worker, new SchedulerPolicy(2, Duration.ofMillis(20), 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));

        // When a first request arrives, and a second 5 ms later fills the batch
        var first = scheduler.submit(SchedulerTest.request("first"));
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 1);
        ticker.advance(Duration.ofMillis(5));
        var second = scheduler.submit(SchedulerTest.request("second"));
        await(first);
        await(second);
        SchedulerTest.awaitCondition(() -> events.finished.size() == 2);

        // Then the batch was reported dispatched as full, with nothing left queued and itself in flight
        assertThat(events.dispatched).containsExactly("2 prompts FULL, 0 queued, 1 in flight");
        // and the first waited 5 ms, the second not at all
        assertThat(events.timesInQueue).containsExactly(Duration.ofMillis(5), Duration.ZERO);
        // and the worker's call took 7 ms and succeeded
        assertThat(events.batchesFinished).containsExactly("7 ms: ok");
        // and each request ended with its completion
        assertThat(events.finished).containsExactlyInAnyOrder("completed: first", "completed: second");
    }

    @Test
    void aPartialBatchReportsMaxWaitAndHowLongItsRequestWaited() throws Exception {
        // Given a scheduler with a max-wait of 20 ms
        var scheduler = start(new SpyWorker(), new SchedulerPolicy(8, Duration.ofMillis(20), 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));

        // When a lone request has waited 20 ms
        var alone = scheduler.submit(SchedulerTest.request("alone"));
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 1);
        ticker.advance(Duration.ofMillis(20));
        await(alone);
        SchedulerTest.awaitCondition(() -> events.batchesFinished.size() == 1);

        // Then it left as a max-wait batch, having waited exactly that long
        assertThat(events.dispatched).containsExactly("1 prompts MAX_WAIT, 0 queued, 1 in flight");
        assertThat(events.timesInQueue).containsExactly(Duration.ofMillis(20));
    }

    @Test
    void aLastBatchAtShutdownIsReportedAsSuch() throws Exception {
        // Given a request waiting for a batch that would wait long
        var scheduler = start(new SpyWorker(), new SchedulerPolicy(8, Duration.ofSeconds(30), 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        var waiting = scheduler.submit(SchedulerTest.request("waiting"));
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 1);

        // When the scheduler shuts down
        assertThat(scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS))).isTrue();

        // Then the request left in a batch reported as the shutdown's
        assertThat(await(waiting).text()).isEqualTo("completed: waiting");
        assertThat(events.dispatched).containsExactly("1 prompts SHUTDOWN, 0 queued, 1 in flight");
    }

    @Test
    void aFailedWorkerCallIsReportedWithItsLatencyAndItsFailure() throws Exception {
        // Given a worker that fails after 3 ms of the test's time
        var down = new WorkerException.Unavailable("connection refused");
        WorkerApi worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                ticker.advance(Duration.ofMillis(3));
                throw down;
            }
        };
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));

        // When a request is sent
        var failed = scheduler.submit(SchedulerTest.request("x"));

        // Then its caller gets the worker's failure, and so do the events
        assertThat(failureOf(failed)).isSameAs(down);
        SchedulerTest.awaitCondition(() -> events.finished.size() == 1);
        assertThat(events.batchesFinished).containsExactly("3 ms: connection refused");
        assertThat(events.finished).containsExactly("failed: connection refused");
    }

    @Test
    void aWorkerThatMiscountsIsReportedWithItsLatencyAndTheMiscount() throws Exception {
        // Given a worker that answers one result too few, after 4 ms of the test's time
        WorkerApi worker = new SaboteurWorker(SaboteurWorker.Sabotage.TOO_FEW_RESULTS) {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                ticker.advance(Duration.ofMillis(4));
                return super.complete(batch);
            }
        };
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));

        // When a request is sent
        var failed = scheduler.submit(SchedulerTest.request("x"));

        // Then the miscount is reported, after the call's latency
        assertThat(failureOf(failed)).hasMessage("the worker answered 0 results for 1 prompts");
        SchedulerTest.awaitCondition(() -> events.batchesFinished.size() == 1);
        assertThat(events.batchesFinished).containsExactly("4 ms: the worker answered 0 results for 1 prompts");
    }

    @Test
    void aWorkerCallAbandonedAtTheWorkerTimeoutIsReportedAsTimedOutEvenIfItAnswersLater() throws Exception {
        // Given a worker that ignores being interrupted and answers only when the test lets it, after 9 ms of its time
        var release = new CountDownLatch(1);
        var interrupted = new CountDownLatch(1);
        WorkerApi worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                while (true) {
                    try {
                        release.await();
                        ticker.advance(Duration.ofMillis(9));
                        return super.complete(batch);
                    } catch (InterruptedException e) {
                        interrupted.countDown();
                    }
                }
            }
        };
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(60), Duration.ofMillis(200)));

        // When the worker timeout of 200 ms passes
        var abandoned = scheduler.submit(SchedulerTest.request("x"));

        // Then the caller gets a worker timeout, and the call was interrupted
        assertThat(failureOf(abandoned)).isInstanceOf(WorkerException.TimedOut.class)
                .hasMessage("the worker did not answer within 200 ms");
        assertThat(interrupted.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

        // When the worker answers after all
        release.countDown();

        // Then the call is reported as timed out, and its answer is neither given nor billed
        SchedulerTest.awaitCondition(() -> events.batchesFinished.size() == 1);
        assertThat(events.batchesFinished).containsExactly("9 ms: the worker did not answer within 200 ms");
        SchedulerTest.awaitCondition(() -> scheduler.batchesInFlight() == 0);
        assertThat(usage.rows).isEmpty();
    }

    @Test
    void aWorkerCallThatFailsBecauseItWasAbandonedIsReportedAsTheTimeoutNotItsOwnFailure() throws Exception {
        // Given a worker that hangs until interrupted, and a worker timeout of 200 ms
        var worker = new SaboteurWorker(SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(60), Duration.ofMillis(200)));

        // When a request is sent
        var abandoned = scheduler.submit(SchedulerTest.request("x"));

        // Then caller and events see the timeout, not the worker's reaction to the interrupt
        assertThat(failureOf(abandoned)).hasMessage("the worker did not answer within 200 ms");
        assertThat(worker.abandoned.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        SchedulerTest.awaitCondition(() -> events.batchesFinished.size() == 1);
        assertThat(events.batchesFinished).singleElement().asString().endsWith(": the worker did not answer within 200 ms");
    }

    @Test
    void aRequestTurnedAwayBeforeAnyRateIsKnownRetriesAfterOneSecond() throws Exception {
        // Given the only batch slot held by a hanging call, and room for one queued request
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 1, 1, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        scheduler.submit(SchedulerTest.request("hang"));
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);
        scheduler.submit(SchedulerTest.request("queued"));

        // When one more arrives, before a second of sending has passed
        var tooMany = SchedulerTest.request("one too many");

        // Then it is turned away with a retry after exactly one second, and the rejection is reported
        assertThatThrownBy(() -> scheduler.submit(tooMany))
                .isInstanceOfSatisfying(CompletionRejectedException.class, rejected -> {
                    assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.QUEUE_FULL);
                    assertThat(rejected.retryAfter()).isEqualTo(Duration.ofSeconds(1));
                });
        assertThat(events.rejected).containsExactly(tooMany.prompt() + " QUEUE_FULL");
    }

    @Test
    void aRequestTurnedAwayRetriesWhenTheQueueWillHaveDrainedAtTheRateSoFar() throws Exception {
        // Given a rate of two requests a second: one sent at once, one (that hangs, holding the only slot) a second later
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 1, 3, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        await(scheduler.submit(SchedulerTest.request("first")));
        ticker.advance(Duration.ofSeconds(1));
        scheduler.submit(SchedulerTest.request("hang"));
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 2);

        // When three requests fill the queue and a fourth arrives
        for (int i = 0; i < 3; i++) {
            scheduler.submit(SchedulerTest.request("queued " + i));
        }
        var tooMany = SchedulerTest.request("one too many");

        // Then it may retry once three requests have drained at two a second: after ceil(1.5) = 2 s
        assertThatThrownBy(() -> scheduler.submit(tooMany))
                .isInstanceOfSatisfying(CompletionRejectedException.class,
                        rejected -> assertThat(rejected.retryAfter()).isEqualTo(Duration.ofSeconds(2)));
    }

    @Test
    void aRequestTurnedAwayWithNothingQueuedRetriesAfterOneSecondNotAtOnce() throws Exception {
        // Given a known rate of two requests a second, and an empty queue
        var scheduler = start(new SpyWorker(), new SchedulerPolicy(1, Duration.ZERO, 1, 10, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        await(scheduler.submit(SchedulerTest.request("first")));
        ticker.advance(Duration.ofSeconds(1));
        await(scheduler.submit(SchedulerTest.request("second")));

        // When the scheduler has shut down and a request arrives
        assertThat(scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS))).isTrue();
        var late = SchedulerTest.request("late");

        // Then it is turned away with a retry after one second: an empty queue drains in no time, but not sooner
        assertThatThrownBy(() -> scheduler.submit(late))
                .isInstanceOfSatisfying(CompletionRejectedException.class, rejected -> {
                    assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.SHUTTING_DOWN);
                    assertThat(rejected.retryAfter()).isEqualTo(Duration.ofSeconds(1));
                });
        assertThat(events.rejected).containsExactly(late.prompt() + " SHUTTING_DOWN");
    }

    // --- helpers

    private Scheduler start(WorkerApi worker, SchedulerPolicy policy) {
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(5), Duration.ofMillis(50), Ticker.system(), UsageEvents.NONE)
                .start();
        var scheduler = new Scheduler(worker, ledger, policy, ticker, Clock.systemUTC(), events).start();
        started.add(scheduler);
        return scheduler;
    }

    private static Completion await(CompletableFuture<Completion> completion) throws Exception {
        return completion.get(SLACK_SECONDS, TimeUnit.SECONDS);
    }

    private static Throwable failureOf(CompletableFuture<Completion> completion) throws Exception {
        try {
            completion.get(SLACK_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        }
        throw new AssertionError("the request succeeded");
    }

    /** Notes every event as a line of text. */
    private static final class RecordingEvents implements SchedulerEvents {
        final List<String> rejected = new CopyOnWriteArrayList<>();
        final List<String> dispatched = new CopyOnWriteArrayList<>();
        final List<String> batchesFinished = new CopyOnWriteArrayList<>();
        final List<Duration> timesInQueue = new CopyOnWriteArrayList<>();
        final List<String> finished = new CopyOnWriteArrayList<>();

        @Override
        public void rejected(CompletionRequest request, CompletionRejectedException reason) {
            rejected.add(request.prompt() + " " + reason.reason());
        }

        @Override
        public void batchDispatched(Batch batch, BatchTrigger trigger, int queued, int batchesInFlight) {
            dispatched.add(batch.size() + " prompts " + trigger + ", " + queued + " queued, " + batchesInFlight + " in flight");
        }

        @Override
        public void batchFinished(Batch batch, Duration latency, RuntimeException failure) {
            batchesFinished.add(latency.toMillis() + " ms: " + (failure == null ? "ok" : failure.getMessage()));
        }

        @Override
        public void timeInQueue(Duration waited) {
            timesInQueue.add(waited);
        }

        @Override
        public void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {
            finished.add(completion != null ? completion.text() : "failed: " + failure.getMessage());
        }
    }
}
