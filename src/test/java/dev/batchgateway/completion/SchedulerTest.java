package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class SchedulerTest {

    /** Generous: a loaded two-core CI machine must never make a correct scheduler fail. */
    private static final long SLACK_SECONDS = 10;

    private final SpyUsageRepository usage = new SpyUsageRepository();
    private final ManualTicker frozen = new ManualTicker();
    private final List<Scheduler> started = new ArrayList<>();

    @AfterEach
    void stopSchedulers() throws InterruptedException {
        for (Scheduler scheduler : started) {
            scheduler.shutdown(Duration.ofSeconds(1));
        }
    }

    @Test
    void eightConcurrentRequestsGoToTheWorkerAsOneBatch() throws Exception {
        // Given a scheduler that waits long for partial batches
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofSeconds(30)));

        // When eight callers ask at once
        List<CompletableFuture<Completion>> completions;
        try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
            completions = IntStream.range(0, 8)
                    .mapToObj(i -> CompletableFuture.supplyAsync(() -> scheduler.submit(request("prompt " + i)), callers)
                            .thenCompose(c -> c))
                    .toList();
        }

        // Then they are answered after one worker call of eight prompts
        for (int i = 0; i < 8; i++) {
            assertThat(await(completions.get(i)).text()).isEqualTo("completed: prompt " + i);
        }
        assertThat(worker.batchSizes()).containsExactly(8);
    }

    @Test
    void aLoneRequestLeavesWhenItHasWaitedMaxWaitAndNotBefore() throws Exception {
        // Given a scheduler whose clock stands still
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(50)), frozen);

        // When one request arrives and time does not move
        var completion = scheduler.submit(request("alone"));
        Thread.sleep(300); // several max-waits of real time: the loop must go by its clock, not by wake-ups

        // Then it has not been sent
        assertThat(completion).isNotDone();
        assertThat(worker.batches).isEmpty();

        // When its max-wait has passed
        frozen.advance(Duration.ofMillis(50));

        // Then it goes out alone
        assertThat(await(completion).text()).isEqualTo("completed: alone");
        assertThat(worker.batchSizes()).containsExactly(1);
    }

    @Test
    void aLoneRequestIsAnsweredNoSoonerThanMaxWaitOnARealClock() throws Exception {
        // Given a real clock and a max-wait of 100 ms
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(100)), Ticker.system());

        // When one request arrives
        long started = System.nanoTime();
        var completion = scheduler.submit(request("alone"));
        await(completion);

        // Then it waited at least max-wait
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isGreaterThanOrEqualTo(Duration.ofMillis(100));
        assertThat(worker.batchSizes()).containsExactly(1);
    }

    @Test
    void maxWaitIsCountedFromTheFirstRequestOfABatchNotTheNewest() throws Exception {
        // Given a scheduler whose clock stands still, with a max-wait of 50 ms
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(50)), frozen);

        // When a first request arrives, a second 30 ms later, and 20 ms more pass
        var first = scheduler.submit(request("first"));
        awaitCondition(() -> scheduler.queued() == 1);
        frozen.advance(Duration.ofMillis(30));
        var second = scheduler.submit(request("second"));
        frozen.advance(Duration.ofMillis(20));

        // Then both leave together now, when the first has waited its 50 ms (the second only 20)
        await(first);
        await(second);
        assertThat(worker.batchSizes()).containsExactly(2);
    }

    @Test
    void maxWaitIsCountedFromWhenTheRequestReachedTheGatewayNotFromTheQueue() throws Exception {
        // Given a scheduler whose clock stands still, with a max-wait of 50 ms
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(50)), frozen);

        // When a request is queued 30 ms after it reached the gateway (reading and checking it took that long)
        var completion = scheduler.submit(request("read slowly"), ChronoUnit.FOREVER.getDuration(),
                arrivedAgo(Duration.ofMillis(30)));
        awaitCondition(() -> scheduler.queued() == 1);
        frozen.advance(Duration.ofMillis(19));
        Thread.sleep(100); // real time for a wrong loop to send it; the loop goes by its clock

        // Then it is still waiting 49 ms after its arrival
        assertThat(completion).isNotDone();

        // When 1 ms more passes: 50 ms since it arrived, 20 since it was queued
        frozen.advance(Duration.ofMillis(1));

        // Then it leaves
        assertThat(await(completion).text()).isEqualTo("completed: read slowly");
        assertThat(worker.batchSizes()).containsExactly(1);
    }

    @Test
    void aRequestsDeadlineIsCountedFromWhenItReachedTheGateway() throws Exception {
        // Given a worker that hangs, and a gateway request timeout of 10 s
        var worker = new SaboteurWorker(SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(10), Duration.ofSeconds(60)));

        // When a request is queued 9.9 s after it reached the gateway
        long queued = System.nanoTime();
        var completion = scheduler.submit(request("late"), ChronoUnit.FOREVER.getDuration(),
                arrivedAgo(Duration.ofMillis(9_900)));

        // Then its deadline passes about 0.1 s later, not 10 s later (slack for a loaded machine)
        assertThat(failureOf(completion)).isInstanceOf(DeadlineExceededException.class);
        assertThat(Duration.ofNanos(System.nanoTime() - queued)).isLessThan(Duration.ofSeconds(5));
    }

    /** A caller still there, whose request reached the gateway this long before it was queued. */
    private static CallerPresence arrivedAgo(Duration waited) {
        return new CallerPresence() {
            @Override
            public boolean stillWaiting() {
                return true;
            }

            @Override
            public Duration waitedBeforeQueue() {
                return waited;
            }
        };
    }

    @Test
    void onARealClockAPartialBatchLeavesWhenItsFirstRequestHasWaitedNotLater() throws Exception {
        // Given a real clock and a max-wait of 2 s
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofSeconds(2)), Ticker.system());

        // When a first request arrives, and a second 1.5 s later
        long started = System.nanoTime();
        var first = scheduler.submit(request("first"));
        Thread.sleep(1500); // the arrival pattern under test, not a synchronisation
        scheduler.submit(request("second"));
        await(first);

        // Then the batch left about 2 s after the first arrived, not 2 s after the second (3.5 s); 1 s of slack
        assertThat(Duration.ofNanos(System.nanoTime() - started))
                .isGreaterThanOrEqualTo(Duration.ofSeconds(2))
                .isLessThan(Duration.ofSeconds(3));
        assertThat(worker.batchSizes()).containsExactly(2);
    }

    @Test
    void aBatchWithOneFailedPromptAnswersEachCallerItsOwnOutcomeAndBillsOnlyTheServed() throws Exception {
        // Given a worker that fails the second prompt of a batch alone (as a fan-out to Ollama does)
        var refused = new WorkerException.Rejected("prompt too long");
        WorkerApi worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                var answers = new java.util.ArrayList<>(super.complete(batch));
                answers.set(1, new WorkerOutcome.Failed(refused));
                return answers;
            }
        };
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), Ticker.system(), UsageEvents.NONE)
                .start();
        var scheduler = new Scheduler(worker, ledger, policy(3, Duration.ofSeconds(30)), Ticker.system(), Clock.systemUTC(),
                SchedulerEvents.NONE).start();

        // When three requests make one batch
        var requests = List.of(request("one"), request("two"), request("three"));
        var completions = requests.stream().map(scheduler::submit).toList();

        // Then the first and third get their completions, the second its own failure
        assertThat(await(completions.get(0)).text()).isEqualTo("completed: one");
        assertThat(await(completions.get(2)).text()).isEqualTo("completed: three");
        assertThatThrownBy(() -> await(completions.get(1))).hasCause(refused);

        // And once the ledger has settled, exactly the two served requests are billed
        scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS));
        ledger.close(Duration.ofSeconds(SLACK_SECONDS));
        assertThat(usage.rows).extracting(UsageRecord::requestId)
                .containsExactlyInAnyOrder(requests.get(0).requestId(), requests.get(2).requestId());
    }

    @Test
    void theGatewaysRequestTimeoutEndsARequestWhoseCallerGaveNone() throws Exception {
        // Given a worker that hangs, and a gateway request timeout of 1 s
        var worker = new SaboteurWorker(SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(1), Duration.ofSeconds(60)));

        // When a request comes without a timeout of its own
        long started = System.nanoTime();
        var completion = scheduler.submit(request("slow"));

        // Then it ends with the gateway's deadline, about a second later (slack for a loaded machine, not ten times)
        assertThatThrownBy(() -> await(completion))
                .cause().isInstanceOf(DeadlineExceededException.class)
                .hasMessage("the request was not completed within 1000 ms");
        assertThat(Duration.ofNanos(System.nanoTime() - started))
                .isGreaterThanOrEqualTo(Duration.ofMillis(900))
                .isLessThan(Duration.ofSeconds(8));
    }

    @Test
    void aRequestSubmittedWhileShutdownBeginsIsNeverLeftUnanswered() throws Exception {
        // Given schedulers shutting down while callers keep submitting (the race the submit re-check closes)
        for (int round = 0; round < 30; round++) {
            var worker = new SpyWorker();
            var ledger = new UsageLedger(usage, 100_000, 1000, Duration.ofMillis(10), Duration.ofMillis(100), Ticker.system(),
                    UsageEvents.NONE).start();
            var scheduler = new Scheduler(worker, ledger,
                    new SchedulerPolicy(8, Duration.ofSeconds(30), 4, 100_000, Duration.ofSeconds(60), Duration.ofSeconds(60)),
                    Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();
            List<CompletableFuture<Completion>> taken = new java.util.concurrent.CopyOnWriteArrayList<>();
            var submitting = new java.util.concurrent.CountDownLatch(2);
            try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
                for (int caller = 0; caller < 2; caller++) {
                    callers.submit(() -> {
                        submitting.countDown();
                        while (true) {
                            try {
                                taken.add(scheduler.submit(request("racing")));
                            } catch (CompletionRejectedException shuttingDown) {
                                return;
                            }
                        }
                    });
                }
                submitting.await();

                // When the scheduler shuts down meanwhile
                scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS));
            }

            // Then every request it took was answered: served in the last batch, or turned away; none waits on
            for (var completion : taken) {
                assertThat(completion.handle((served, turnedAway) -> true).get(SLACK_SECONDS, TimeUnit.SECONDS))
                        .as("round %d", round).isTrue();
            }
            ledger.close(Duration.ofSeconds(SLACK_SECONDS));
        }
    }

    @Test
    void twentyRequestsMakeTwoFullBatchesAndOnePartial() throws Exception {
        // Given a scheduler whose clock stands still
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(20)), frozen);

        // When twenty requests arrive
        var completions = IntStream.range(0, 20).mapToObj(i -> scheduler.submit(request("p" + i))).toList();

        // Then two full batches leave at once
        awaitAll(completions.subList(0, 16));
        assertThat(worker.batchSizes()).containsExactly(8, 8);
        assertThat(completions.subList(16, 20)).noneMatch(CompletableFuture::isDone);

        // When max-wait passes, the remaining four leave
        frozen.advance(Duration.ofMillis(20));
        awaitAll(completions);
        assertThat(worker.batchSizes()).containsExactly(8, 8, 4);
    }

    @Test
    void requestsWithDifferentMaxTokensNeverShareABatch() throws Exception {
        // Given a scheduler whose clock stands still, not yet started
        var worker = new SpyWorker();
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), frozen, UsageEvents.NONE).start();
        var scheduler = track(new Scheduler(worker, ledger, policy(8, Duration.ofMillis(20)), frozen, Clock.systemUTC(), SchedulerEvents.NONE));

        // When requests with two different max_tokens are queued interleaved, and then the loop starts
        // (all queued before the loop runs, so its first pass sees them all and the clock cannot overtake it)
        var completions = IntStream.range(0, 26)
                .mapToObj(i -> scheduler.submit(request("p" + i, i % 2 == 0 ? 16 : 32)))
                .toList();
        scheduler.start();
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 10);
        frozen.advance(Duration.ofMillis(20));
        awaitAll(completions);

        // Then every batch holds one max_tokens only, and all arrived
        assertThat(worker.batches).allSatisfy(batch -> assertThat(batch.prompts()).allSatisfy(prompt -> {
            int i = Integer.parseInt(prompt.substring(1));
            assertThat(batch.parameters().maxTokens()).isEqualTo(i % 2 == 0 ? 16 : 32);
        }));
        assertThat(worker.batchSizes()).containsExactlyInAnyOrder(8, 5, 8, 5);
    }

    @Test
    void everyCallerGetsItsOwnCompletionUnderConcurrency() throws Exception {
        // Given a scheduler with a short max-wait
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(2)));

        // When 500 callers on 500 threads ask at once
        List<CompletionRequest> requests = IntStream.range(0, 500).mapToObj(i -> request("caller " + i)).toList();
        List<Completion> answers;
        try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
            var futures = requests.stream().map(r -> callers.submit(() -> scheduler.complete(r))).toList();
            answers = new ArrayList<>();
            for (var future : futures) {
                answers.add(future.get(SLACK_SECONDS, TimeUnit.SECONDS));
            }
        }

        // Then each got the answer to its own prompt, under its own request id, billed its own tokens
        for (int i = 0; i < requests.size(); i++) {
            var expected = SpyWorker.answer(requests.get(i).prompt());
            assertThat(answers.get(i).requestId()).isEqualTo(requests.get(i).requestId());
            assertThat(answers.get(i).text()).isEqualTo(expected.text());
            assertThat(answers.get(i).usage()).isEqualTo(expected.usage());
        }
        assertThat(worker.batchSizes()).allSatisfy(size -> assertThat(size).isBetween(1, 8));
        assertThat(worker.prompts()).hasSize(500);
    }

    @Test
    void aHangingWorkerCallDoesNotStopOtherBatchesAndTimesOut() throws Exception {
        // Given a worker that hangs on one prompt, and a worker timeout of 1 s
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var policy = new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(1));
        var scheduler = start(worker, policy);

        // When one batch hangs and others follow
        var hung = scheduler.submit(request("hang"));
        var others = IntStream.range(0, 5).mapToObj(i -> scheduler.submit(request("ok " + i))).toList();

        // Then the others are answered while the hung one still waits
        awaitAll(others);
        assertThat(hung).isNotDone();

        // And the hung one fails with a worker timeout, its call abandoned
        assertThat(failureOf(hung)).isInstanceOf(WorkerException.TimedOut.class);
        assertThat(worker.abandoned.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        awaitCondition(() -> scheduler.batchesInFlight() == 0);
    }

    @Test
    void aWorkerFailureFailsExactlyTheCallersOfThatBatch() throws Exception {
        // Given a worker that fails every batch holding "boom"
        var worker = SaboteurWorker.on("boom", SaboteurWorker.Sabotage.THROW_BAD_ANSWER);
        var scheduler = start(worker, policy(4, Duration.ofSeconds(30)));

        // When one batch of four holds "boom" and the next does not
        var failing = List.of("a", "boom", "c", "d").stream().map(p -> scheduler.submit(request(p))).toList();
        awaitSettled(failing);
        var fine = List.of("e", "f", "g", "h").stream().map(p -> scheduler.submit(request(p))).toList();

        // Then all four of the first fail, all four of the second succeed, and only the second are billed
        assertThat(failing).allSatisfy(c -> assertThat(failureOf(c)).isInstanceOf(WorkerException.BadAnswer.class));
        awaitAll(fine);
        assertThat(awaitRows(4)).extracting(UsageRecord::requestId)
                .containsExactlyInAnyOrderElementsOf(fine.stream().map(c -> c.join().requestId()).toList());
    }

    @Test
    void aWorkerThatAnswersTheWrongNumberOfResultsFailsTheBatch() throws Exception {
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), Ticker.system(), UsageEvents.NONE)
                .start();
        for (var sabotage : List.of(SaboteurWorker.Sabotage.TOO_FEW_RESULTS, SaboteurWorker.Sabotage.TOO_MANY_RESULTS)) {
            // Given a worker that miscounts
            var scheduler = track(new Scheduler(new SaboteurWorker(sabotage), ledger, policy(2, Duration.ofSeconds(30)),
                    Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start());

            // When a batch of two is sent
            var completions = List.of(scheduler.submit(request("x")), scheduler.submit(request("y")));

            // Then both callers fail, and nothing is billed
            assertThat(completions).allSatisfy(c -> assertThat(failureOf(c))
                    .isInstanceOf(WorkerException.BadAnswer.class)
                    .hasMessageContaining("for 2 prompts"));
        }
        // once the ledger has written all it was given
        ledger.close(Duration.ofSeconds(SLACK_SECONDS));
        assertThat(usage.rows).isEmpty();
    }

    @Test
    void aBugInTheWorkerAdapterFailsTheBatchInsteadOfLeavingCallersWaiting() throws Exception {
        // Given a worker adapter that throws something unexpected
        var scheduler = start(new SaboteurWorker(SaboteurWorker.Sabotage.THROW_UNEXPECTED), policy(1, Duration.ZERO));

        // When a request is sent, then it fails as a bad answer
        assertThat(failureOf(scheduler.submit(request("x")))).isInstanceOf(WorkerException.BadAnswer.class);

        // And the scheduler keeps serving
        var worker = new SpyWorker();
        var healthy = start(worker, policy(1, Duration.ZERO));
        assertThat(await(healthy.submit(request("y"))).text()).isEqualTo("completed: y");
    }

    @Test
    void servedCompletionsAreBilledWithTheWorkersCounts() throws Exception {
        // Given a scheduler
        var scheduler = start(new SpyWorker(), policy(8, Duration.ofMillis(5)));

        // When three users are served
        var completions = List.of(
                scheduler.submit(new CompletionRequest(UUID.randomUUID(), 1, "one two", new GenerationParameters(8))),
                scheduler.submit(new CompletionRequest(UUID.randomUUID(), 2, "three", new GenerationParameters(8))),
                scheduler.submit(new CompletionRequest(UUID.randomUUID(), 3, "four five six", new GenerationParameters(8))));
        awaitAll(completions);

        // Then each completion has one row with its user, counts and the worker's model
        var rows = awaitRows(3);
        for (var completion : completions) {
            var served = completion.join();
            assertThat(rows).filteredOn(row -> row.requestId().equals(served.requestId())).singleElement()
                    .satisfies(row -> {
                        assertThat(row.usage()).isEqualTo(served.usage());
                        assertThat(row.model()).isEqualTo("spy-model");
                    });
        }
        assertThat(rows).extracting(UsageRecord::userId).containsExactlyInAnyOrder(1L, 2L, 3L);
    }

    @Test
    void aFullQueueTurnsRequestsAwayAtOnce() throws Exception {
        // Given one batch slot, held by a hanging call, and room for two queued requests
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var policy = new SchedulerPolicy(1, Duration.ZERO, 1, 2, Duration.ofSeconds(60), Duration.ofSeconds(60));
        var scheduler = start(worker, policy);
        scheduler.submit(request("hang"));
        awaitCondition(() -> worker.batches.size() == 1);

        // When three more arrive
        scheduler.submit(request("queued 1"));
        scheduler.submit(request("queued 2"));

        // Then the third is rejected because the queue is full
        assertThatThrownBy(() -> scheduler.submit(request("one too many")))
                .isInstanceOfSatisfying(CompletionRejectedException.class, rejected -> {
                    assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.QUEUE_FULL);
                    assertThat(rejected.retryAfter()).isGreaterThanOrEqualTo(Duration.ofSeconds(1));
                });
    }

    @Test
    void aRequestWhoseDeadlinePassesInTheQueueIsAnsweredThenAndNeverSent() throws Exception {
        // Given the only batch slot held by a hanging call
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var policy = new SchedulerPolicy(1, Duration.ZERO, 1, 100, Duration.ofSeconds(60), Duration.ofSeconds(60));
        var scheduler = start(worker, policy);
        scheduler.submit(request("hang"));
        awaitCondition(() -> worker.batches.size() == 1);

        // When a request with a 200 ms deadline waits behind it
        var late = scheduler.submit(request("late"), Duration.ofMillis(200));

        // Then it is answered with a deadline failure, and the worker never sees it
        assertThat(failureOf(late)).isInstanceOf(DeadlineExceededException.class);
        assertThat(worker.prompts()).doesNotContain("late");
        awaitCondition(() -> scheduler.queued() == 0); // it leaves the queue's count just after its caller is answered
    }

    @Test
    void aRequestCancelledBeforeItsBatchLeavesIsNeverSent() throws Exception {
        // Given a scheduler whose clock stands still
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(20)), frozen);

        // When one of two queued requests is cancelled before max-wait
        var gone = scheduler.submit(request("gone"));
        var staying = scheduler.submit(request("staying"));
        gone.cancel(false);
        frozen.advance(Duration.ofMillis(20));

        // Then only the other one reaches the worker
        await(staying);
        assertThat(worker.prompts()).containsExactly("staying");
    }

    @Test
    void aCallerThatHasGoneWhenItsBatchLeavesIsDroppedFromIt() throws Exception {
        // Given a scheduler whose clock stands still, and a caller whose check says it has gone
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(20)), frozen);
        var gone = scheduler.submit(request("gone"), Duration.ofSeconds(60), () -> false);
        var staying = scheduler.submit(request("staying"), Duration.ofSeconds(60), () -> true);

        // When the batch leaves
        frozen.advance(Duration.ofMillis(20));

        // Then only the present caller reaches the worker, and the gone one's future is cancelled
        await(staying);
        assertThat(worker.prompts()).containsExactly("staying");
        assertThat(gone).isCancelled();
        assertThat(scheduler.queued()).isZero();
    }

    @Test
    void aBrokenCallerCheckCountsAsPresent() throws Exception {
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(1, Duration.ZERO));

        var answered = scheduler.submit(request("checked"), Duration.ofSeconds(60), () -> {
            throw new IllegalStateException("the check broke");
        });

        assertThat(await(answered).text()).isEqualTo("completed: checked");
    }

    @Test
    void aRequestCancelledAfterItsBatchLeftIsStillBilled() throws Exception {
        // Given a worker that holds its batch until told to answer
        var release = new java.util.concurrent.CountDownLatch(1);
        var dispatched = new java.util.concurrent.CountDownLatch(1);
        var worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                dispatched.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    throw new WorkerException.TimedOut("interrupted", e);
                }
                return super.complete(batch);
            }
        };
        var scheduler = start(worker, policy(1, Duration.ZERO));
        var completion = scheduler.submit(request("walked away"));
        assertThat(dispatched.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

        // When its caller cancels while the worker is busy with it, and the worker then answers
        completion.cancel(false);
        release.countDown();

        // Then the worker's tokens are recorded as for any served request
        assertThat(awaitRows(1)).singleElement().satisfies(row -> assertThat(row.usage().promptTokens()).isEqualTo(11));
    }

    @Test
    void aRequestWhoseDeadlineExpiresAfterItsBatchLeftIsStillBilled() throws Exception {
        // Given a worker that holds its batch until told to answer
        var release = new java.util.concurrent.CountDownLatch(1);
        var dispatched = new java.util.concurrent.CountDownLatch(1);
        var worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                dispatched.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    throw new WorkerException.TimedOut("interrupted", e);
                }
                return super.complete(batch);
            }
        };
        var scheduler = start(worker, policy(1, Duration.ZERO));
        var tooSlow = request("too slow");
        // a deadline a loaded machine dispatches well within, and that then passes while the worker holds the batch
        var completion = scheduler.submit(tooSlow, Duration.ofSeconds(2));
        assertThat(dispatched.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

        // When its deadline expires while the worker is busy with it, and the worker then answers
        assertThat(failureOf(completion)).isInstanceOf(DeadlineExceededException.class);
        release.countDown();

        // Then the worker's tokens are recorded, by the same rule as a cancel after dispatch
        assertThat(awaitRows(1)).singleElement().satisfies(row -> assertThat(row.requestId()).isEqualTo(tooSlow.requestId()));
    }

    @Test
    void shutdownSendsQueuedRequestsAndTurnsNewOnesAway() throws Exception {
        // Given requests waiting for a batch that would wait long
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofSeconds(30)));
        var waiting = IntStream.range(0, 3).mapToObj(i -> scheduler.submit(request("w" + i))).toList();

        // When the scheduler shuts down
        assertThat(scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS))).isTrue();

        // Then every waiting caller has its completion, and new requests are turned away
        assertThat(waiting).allSatisfy(c -> assertThat(c.getNow(null)).isNotNull());
        assertThat(worker.batchSizes()).containsExactly(3);
        assertThatThrownBy(() -> scheduler.submit(request("late")))
                .isInstanceOfSatisfying(CompletionRejectedException.class,
                        rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.SHUTTING_DOWN));
    }

    @Test
    void aCompletionWhoseUsageCannotBeRecordedIsTurnedAwayAndSoAreTheNextRequests() throws Exception {
        // Given a store that is away, and no journal; the writer waits a minute before it tries again (the ledger turns
        // callers away for that back-off: with 10 ms, a loaded machine's pause between two lines of this test outlasted it)
        var store = SaboteurUsageRepository.awayForever();
        var ledger = new UsageLedger(store, 1000, 100, Duration.ofMinutes(1), Duration.ofMinutes(1), Ticker.system(), UsageEvents.NONE).start();
        var scheduler = track(new Scheduler(new SpyWorker(), ledger, policy(1, Duration.ZERO), Ticker.system(),
                Clock.systemUTC(), SchedulerEvents.NONE).start());

        // When one completion is generated and its usage cannot be made durable
        // Then its caller gets 503, never an unbilled answer
        assertThat(failureOf(scheduler.submit(request("unbillable"))))
                .isInstanceOfSatisfying(CompletionRejectedException.class,
                        rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.USAGE_BACKLOG));

        // And the next request is turned away at once, until usage can be written again
        assertThat(ledger.saturated()).isTrue();
        assertThatThrownBy(() -> scheduler.submit(request("refused")))
                .isInstanceOfSatisfying(CompletionRejectedException.class,
                        rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.USAGE_BACKLOG));
        ledger.close(Duration.ZERO);
    }

    @Test
    void anAnswerLeavesOnlyOnceItsUsageRowIsWritten() throws Exception {
        // Given a store that holds its writes until told to go on
        var held = new HeldUsageRepository();
        var ledger = new UsageLedger(held, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(50), Ticker.system(), UsageEvents.NONE).start();
        var scheduler = track(new Scheduler(new SpyWorker(), ledger, policy(1, Duration.ZERO), Ticker.system(),
                Clock.systemUTC(), SchedulerEvents.NONE).start());

        // When a request's completion is generated and its row is being written
        var request = request("billed first");
        var completion = scheduler.submit(request);
        assertThat(held.entered.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

        // Then its caller has no answer yet
        assertThat(completion).isNotDone();
        assertThat(held.rows).isEmpty();

        // When the write commits
        held.gate.countDown();

        // Then the caller gets its answer, and its row is in the store
        assertThat(await(completion).text()).isEqualTo("completed: billed first");
        assertThat(held.rows).singleElement().satisfies(row -> assertThat(row.requestId()).isEqualTo(request.requestId()));
        ledger.close(Duration.ZERO);
    }

    // --- helpers

    private Scheduler start(WorkerApi worker, SchedulerPolicy policy) {
        return start(worker, policy, Ticker.system());
    }

    private Scheduler start(WorkerApi worker, SchedulerPolicy policy, Ticker ticker) {
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), ticker, UsageEvents.NONE).start();
        return track(new Scheduler(worker, ledger, policy, ticker, Clock.systemUTC(), SchedulerEvents.NONE).start());
    }

    private Scheduler track(Scheduler scheduler) {
        started.add(scheduler);
        return scheduler;
    }

    private static SchedulerPolicy policy(int batchSize, Duration maxWait) {
        return new SchedulerPolicy(batchSize, maxWait, 32, 10_000, Duration.ofSeconds(60), Duration.ofSeconds(60));
    }

    static CompletionRequest request(String prompt) {
        return request(prompt, 64);
    }

    static CompletionRequest request(String prompt, int maxTokens) {
        return new CompletionRequest(UUID.randomUUID(), 42, prompt, new GenerationParameters(maxTokens));
    }

    private static Completion await(CompletableFuture<Completion> completion) throws Exception {
        return completion.get(SLACK_SECONDS, TimeUnit.SECONDS);
    }

    private static void awaitAll(List<CompletableFuture<Completion>> completions) throws Exception {
        for (var completion : completions) {
            await(completion);
        }
    }

    private static void awaitSettled(List<CompletableFuture<Completion>> completions) {
        CompletableFuture.allOf(completions.toArray(CompletableFuture[]::new))
                .exceptionally(failure -> null)
                .orTimeout(SLACK_SECONDS, TimeUnit.SECONDS)
                .join();
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

    private List<UsageRecord> awaitRows(int count) throws InterruptedException {
        awaitCondition(() -> usage.rows.size() >= count);
        return List.copyOf(usage.rows);
    }

    static void awaitCondition(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(SLACK_SECONDS);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within " + SLACK_SECONDS + " s");
            }
            Thread.sleep(5);
        }
    }
}
