package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The scheduler tells its {@link Settlement}, exactly once per request it took, what that request costs: the usage
 * recorded for it, or nothing. Budgets settle their reservations on it, so it must follow the billing rule: what the
 * worker generated is billed, also when the caller left or its deadline passed after dispatch. A settlement that throws
 * is never lost silently: every test here ends by checking that none did.
 */
class SchedulerSettlementTest {

    private static final long SLACK_SECONDS = 10;

    private final SpyUsageRepository usage = new SpyUsageRepository();
    private final ManualTicker frozen = new ManualTicker();
    private final Settlements settlements = new Settlements();
    private final List<Scheduler> started = new ArrayList<>();

    /** Records every settlement, by request id; a second one for the same request is kept too, to be caught. */
    static final class Settlements implements Settlement {
        final Map<UUID, List<TokenUsage>> byRequest = new ConcurrentHashMap<>();
        final List<TokenUsage> unbilled = new CopyOnWriteArrayList<>();

        @Override
        public void settled(CompletionRequest request, TokenUsage billed) {
            byRequest.computeIfAbsent(request.requestId(), id -> new CopyOnWriteArrayList<>())
                    .add(billed == null ? UNBILLED : billed);
        }

        /** Waits for the request's settlement; null when it was settled unbilled. */
        TokenUsage of(CompletionRequest request) throws InterruptedException {
            SchedulerTest.awaitCondition(() -> byRequest.containsKey(request.requestId()));
            var settled = byRequest.get(request.requestId());
            assertThat(settled).as("settled exactly once").hasSize(1);
            return settled.getFirst() == UNBILLED ? null : settled.getFirst();
        }

        private static final TokenUsage UNBILLED = new TokenUsage(0, 0);

        /** Each request costs its day window what it is billed, held by one instance since its operation 3. */
        @Override
        public List<BudgetCharge> charges(CompletionRequest request, TokenUsage usage) {
            return List.of(new BudgetCharge(request.userId(), HOLDER, 3, "day", java.time.Instant.EPOCH, usage.totalTokens()));
        }

        static final UUID HOLDER = UUID.randomUUID();
    }

    @AfterEach
    void stopSchedulers() throws InterruptedException {
        for (Scheduler scheduler : started) {
            scheduler.shutdown(Duration.ofSeconds(1));
        }
        for (Scheduler scheduler : started) {
            assertThat(scheduler.settlementFailures()).as("settlements that threw").isZero();
        }
    }

    @Test
    void aServedRequestIsSettledWithTheUsageItIsBilled() throws Exception {
        var scheduler = start(new SpyWorker(), policy(1, Duration.ZERO), Ticker.system());
        var request = SchedulerTest.request("served");

        var completion = scheduler.submit(request).get(SLACK_SECONDS, TimeUnit.SECONDS);

        assertThat(settlements.of(request)).isEqualTo(completion.usage());
        SchedulerTest.awaitCondition(() -> usage.rows.size() == 1);
        assertThat(usage.rows.getFirst().usage()).isEqualTo(completion.usage());
    }

    @Test
    void aServedRequestsUsageRowCarriesWhatItCostsItsBudgetToBeChargedInTheRowsCommit() throws Exception {
        var scheduler = start(new SpyWorker(), policy(1, Duration.ZERO), Ticker.system());
        var request = SchedulerTest.request("served");

        var completion = scheduler.submit(request).get(SLACK_SECONDS, TimeUnit.SECONDS);

        SchedulerTest.awaitCondition(() -> usage.rows.size() == 1);
        assertThat(usage.rows.getFirst().charges()).containsExactly(new BudgetCharge(request.userId(), Settlements.HOLDER, 3, "day",
                java.time.Instant.EPOCH, completion.usage().totalTokens()));
    }

    @Test
    void requestsThatEndBeforeTheirBatchLeavesAreSettledUnbilled() throws Exception {
        // Given a scheduler whose clock stands still, so that nothing leaves by itself
        var worker = new SpyWorker();
        var scheduler = start(worker, policy(8, Duration.ofMillis(20)), frozen);

        // When one request is cancelled, one's caller has gone when the batch leaves, and one stays
        var cancelled = SchedulerTest.request("cancelled");
        var gone = SchedulerTest.request("gone");
        var staying = SchedulerTest.request("staying");
        scheduler.submit(cancelled).cancel(false);
        scheduler.submit(gone, Duration.ofSeconds(60), () -> false);
        var answer = scheduler.submit(staying);
        frozen.advance(Duration.ofMillis(20));
        answer.get(SLACK_SECONDS, TimeUnit.SECONDS);

        // Then the first two are settled unbilled, and only the one that reached the worker is billed
        assertThat(settlements.of(cancelled)).isNull();
        assertThat(settlements.of(gone)).isNull();
        assertThat(settlements.of(staying)).isNotNull();
        assertThat(worker.prompts()).containsExactly("staying");
    }

    @Test
    void aRequestWhoseDeadlinePassesInTheQueueIsSettledUnbilled() throws Exception {
        // Given the only batch slot held by a hanging call
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 1, 100, Duration.ofSeconds(60),
                Duration.ofSeconds(60)), Ticker.system());
        scheduler.submit(SchedulerTest.request("hang"));
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);

        // When a request's deadline passes while it waits behind it
        var late = SchedulerTest.request("late");
        var answer = scheduler.submit(late, Duration.ofMillis(100));

        // Then it is settled unbilled
        assertThatThrownBy(() -> answer.get(SLACK_SECONDS, TimeUnit.SECONDS)).hasCauseInstanceOf(DeadlineExceededException.class);
        assertThat(settlements.of(late)).isNull();
    }

    @Test
    void aRequestWhoseCallerLeftOrDeadlinePassedAfterDispatchIsSettledWithWhatTheWorkerGenerated() throws Exception {
        // Given a worker that holds its batch until told to answer
        var release = new CountDownLatch(1);
        var worker = new HeldWorker(release);
        var scheduler = start(worker, policy(2, Duration.ZERO), Ticker.system());
        var cancelled = SchedulerTest.request("cancelled after dispatch");
        var expired = SchedulerTest.request("expired after dispatch");

        // When both are at the worker, one caller cancels and the other's deadline passes, then the worker answers
        var first = scheduler.submit(cancelled);
        var second = scheduler.submit(expired, Duration.ofMillis(200));
        assertThat(worker.dispatched.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        first.cancel(false);
        assertThatThrownBy(() -> second.get(SLACK_SECONDS, TimeUnit.SECONDS)).hasCauseInstanceOf(DeadlineExceededException.class);
        assertThat(settlements.byRequest).as("not settled while the worker is busy with them").isEmpty();
        release.countDown();

        // Then both are settled with the worker's counts, as they are billed
        assertThat(settlements.of(cancelled)).isEqualTo(SpyWorker.answer("cancelled after dispatch").usage());
        assertThat(settlements.of(expired)).isEqualTo(SpyWorker.answer("expired after dispatch").usage());
    }

    @Test
    void aPromptTheWorkerFailsIsSettledUnbilledAndTheOthersOfItsBatchBilled() throws Exception {
        // Given a worker that refuses one prompt of a batch
        WorkerApi worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                return batch.prompts().stream().<WorkerOutcome>map(prompt -> prompt.equals("refused")
                        ? new WorkerOutcome.Failed(new WorkerException.Rejected("too long"))
                        : SpyWorker.answer(prompt)).toList();
            }
        };
        var scheduler = start(worker, policy(2, Duration.ofSeconds(30)), Ticker.system());
        var refused = SchedulerTest.request("refused");
        var served = SchedulerTest.request("served");

        // When both go in one batch
        var failing = scheduler.submit(refused);
        scheduler.submit(served).get(SLACK_SECONDS, TimeUnit.SECONDS);

        // Then only the served one is billed
        assertThat(failing).isCompletedExceptionally();
        assertThat(settlements.of(refused)).isNull();
        assertThat(settlements.of(served)).isEqualTo(SpyWorker.answer("served").usage());
    }

    @Test
    void aBatchTheWorkerFailsOrAbandonsIsSettledUnbilled() throws Exception {
        // Given a worker that fails, and one that hangs past the worker timeout
        var failed = SchedulerTest.request("fail");
        var failing = start(SaboteurWorker.on("fail", SaboteurWorker.Sabotage.THROW_BAD_ANSWER), policy(1, Duration.ZERO), Ticker.system());
        var hung = SchedulerTest.request("hang");
        var hanging = start(SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG),
                new SchedulerPolicy(1, Duration.ZERO, 1, 100, Duration.ofSeconds(60), Duration.ofMillis(200)), Ticker.system());

        // When each gets a request
        var first = failing.submit(failed);
        var second = hanging.submit(hung);

        // Then both fail, and neither is billed
        assertThatThrownBy(() -> first.get(SLACK_SECONDS, TimeUnit.SECONDS)).hasCauseInstanceOf(WorkerException.class);
        assertThatThrownBy(() -> second.get(SLACK_SECONDS, TimeUnit.SECONDS)).hasCauseInstanceOf(WorkerException.TimedOut.class);
        assertThat(settlements.of(failed)).isNull();
        assertThat(settlements.of(hung)).isNull();
    }

    @Test
    void aRequestTurnedAwayAtSubmitIsNeverSettled() throws Exception {
        // Given a scheduler that has shut down
        var scheduler = start(new SpyWorker(), policy(1, Duration.ZERO), Ticker.system());
        scheduler.shutdown(Duration.ofSeconds(1));

        // When a request is turned away
        var refused = SchedulerTest.request("refused");
        assertThatThrownBy(() -> scheduler.submit(refused)).isInstanceOf(CompletionRejectedException.class);

        // Then the scheduler never took it, and reports nothing for it: whoever submitted it knows
        assertThat(settlements.byRequest).doesNotContainKey(refused.requestId());
    }

    @Test
    void underConcurrencyEveryRequestIsSettledExactlyOnceAsItIsBilled() throws Exception {
        // Given a scheduler that batches eight, and callers that cancel some of their requests at random moments
        var scheduler = start(new SpyWorker(), policy(8, Duration.ofMillis(2)), Ticker.system());
        List<CompletionRequest> requests = new ArrayList<>();
        List<CompletableFuture<Completion>> answers = new CopyOnWriteArrayList<>();
        try (var callers = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < 400; i++) {
                var request = SchedulerTest.request("prompt " + i);
                requests.add(request);
                boolean cancel = i % 3 == 0;
                callers.submit(() -> {
                    var answer = scheduler.submit(request);
                    answers.add(answer);
                    if (cancel) {
                        answer.cancel(false);
                    }
                });
            }
        }

        // Then each is settled once, with its row's usage when it has one and unbilled when it has none
        SchedulerTest.awaitCondition(() -> settlements.byRequest.size() == requests.size());
        Map<UUID, TokenUsage> rows = new ConcurrentHashMap<>();
        SchedulerTest.awaitCondition(() -> {
            usage.rows.forEach(row -> rows.put(row.requestId(), row.usage()));
            return rows.size() == settlements.byRequest.values().stream()
                    .filter(settled -> settled.getFirst() != Settlements.UNBILLED).count();
        });
        for (var request : requests) {
            assertThat(settlements.of(request)).isEqualTo(rows.get(request.requestId()));
        }
    }

    @Test
    void aShutdownSettlesUnbilledWhatWasQueuedAndWhatItAbandonedAtTheWorker() throws Exception {
        // Given the only batch slot held by a call that hangs, and a request queued behind it
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 1, 100, Duration.ofSeconds(60),
                Duration.ofSeconds(60)), Ticker.system());
        var atTheWorker = SchedulerTest.request("hang");
        var queued = SchedulerTest.request("queued");
        var first = scheduler.submit(atTheWorker);
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);
        var second = scheduler.submit(queued);

        // When the gateway shuts down with a grace period too short for either
        assertThat(scheduler.shutdown(Duration.ofMillis(200))).isFalse();

        // Then both callers are answered, and both requests are settled once, unbilled
        assertThatThrownBy(() -> first.get(SLACK_SECONDS, TimeUnit.SECONDS)).hasCauseInstanceOf(WorkerException.class);
        assertThatThrownBy(() -> second.get(SLACK_SECONDS, TimeUnit.SECONDS)).hasCauseInstanceOf(CompletionRejectedException.class);
        assertThat(settlements.of(atTheWorker)).isNull();
        assertThat(settlements.of(queued)).isNull();
    }

    @Test
    void aRequestDroppedWhileAnObserverThrowsIsSettledAllTheSame() throws Exception {
        // Given a scheduler whose only observer fails on every finished request (telemetry must not cost money)
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), frozen, UsageEvents.NONE).start();
        var failingObserver = new SchedulerEvents() {
            @Override
            public void requestFinished(CompletionRequest request, Completion completion, Throwable failure) {
                throw new IllegalStateException("a metrics bug");
            }
        };
        var scheduler = new Scheduler(new SpyWorker(), ledger, policy(8, Duration.ofSeconds(30)), frozen, Clock.systemUTC(),
                failingObserver, settlements).start();
        started.add(scheduler);

        // When a queued request is cancelled
        var cancelled = SchedulerTest.request("cancelled");
        scheduler.submit(cancelled).cancel(false);

        // Then it is settled unbilled
        assertThat(settlements.of(cancelled)).isNull();
    }

    @Test
    void aSettlementThatThrowsIsCountedAndKeepsNoOtherRequestOfItsBatchFromSettling() throws Exception {
        // Given a settlement that throws for one request
        var poisoned = SchedulerTest.request("poisoned");
        Settlement throwing = (request, billed) -> {
            settlements.settled(request, billed);
            if (request.requestId().equals(poisoned.requestId())) {
                throw new IllegalStateException("a budget bug");
            }
        };
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), Ticker.system(), UsageEvents.NONE).start();
        var scheduler = new Scheduler(new SpyWorker(), ledger, policy(2, Duration.ofSeconds(30)), Ticker.system(),
                Clock.systemUTC(), SchedulerEvents.NONE, throwing).start();
        try {
            // When it is served in one batch with another
            var healthy = SchedulerTest.request("healthy");
            scheduler.submit(poisoned);
            scheduler.submit(healthy).get(SLACK_SECONDS, TimeUnit.SECONDS);

            // Then the other is settled all the same, and the failure is counted (and logged), not lost
            assertThat(settlements.of(healthy)).isEqualTo(SpyWorker.answer("healthy").usage());
            assertThat(settlements.of(poisoned)).isEqualTo(SpyWorker.answer("poisoned").usage());
            assertThat(scheduler.settlementFailures()).isEqualTo(1);
        } finally {
            scheduler.shutdown(Duration.ofSeconds(1));
        }
    }

    // --- helpers

    /** Holds every batch until released, and says when the first one arrived. */
    private static final class HeldWorker extends SpyWorker {
        final CountDownLatch dispatched = new CountDownLatch(1);
        private final CountDownLatch release;

        HeldWorker(CountDownLatch release) {
            this.release = release;
        }

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
    }

    private Scheduler start(WorkerApi worker, SchedulerPolicy policy, Ticker ticker) {
        var ledger = new UsageLedger(usage, 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100), ticker, UsageEvents.NONE).start();
        var scheduler = new Scheduler(worker, ledger, policy, ticker, Clock.systemUTC(), SchedulerEvents.NONE, settlements).start();
        started.add(scheduler);
        return scheduler;
    }

    private static SchedulerPolicy policy(int batchSize, Duration maxWait) {
        return new SchedulerPolicy(batchSize, maxWait, 32, 10_000, Duration.ofSeconds(60), Duration.ofSeconds(60));
    }
}
