package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The rule that lets a load balancer send a 503 to another instance, even a POST (docs/scaling-out.md): every failure
 * the gateway answers with 503 — {@link CompletionRejectedException} and {@link WorkerException.Unavailable} — leaves
 * the request unsent to any worker and unbilled; a request that reached the worker never fails with either. One test
 * per way the scheduler answers 503, each checking what the worker was given and what the ledger wrote.
 */
class RetrySafeRejectionTest {

    /** Generous: a loaded two-core CI machine must never make a correct scheduler fail. */
    private static final long SLACK_SECONDS = 10;

    private final SpyUsageRepository usage = new SpyUsageRepository();
    private final List<Scheduler> started = new ArrayList<>();
    private final List<UsageLedger> ledgers = new ArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        for (Scheduler scheduler : started) {
            scheduler.shutdown(Duration.ofSeconds(1));
        }
        for (UsageLedger ledger : ledgers) {
            ledger.close(Duration.ofSeconds(1));
        }
    }

    @Test
    void aFullQueueTurnsTheRequestAwayUnsentAndUnbilled() throws Exception {
        // Given the only batch slot held by a hanging call and the one queue place taken
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, ledger(usage, 1000), policy(1, 1));
        scheduler.submit(request("hang"));
        awaitCondition(() -> worker.batches.size() == 1);
        scheduler.submit(request("queued"));

        // When one more arrives, then it is refused
        assertRefused(() -> scheduler.submit(request("one too many")), CompletionRejectedException.Reason.QUEUE_FULL);

        // And the worker never saw it, and nothing was billed
        assertThat(worker.prompts()).doesNotContain("one too many");
        assertThat(usage.rows).isEmpty();
    }

    @Test
    void aShuttingDownSchedulerTurnsTheRequestAwayUnsentAndUnbilled() throws Exception {
        // Given a scheduler that has shut down
        var worker = new SpyWorker();
        var scheduler = start(worker, ledger(usage, 1000), policy(32, 100));
        assertThat(scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS))).isTrue();

        // When a request arrives, then it is refused, and the worker never saw it
        assertRefused(() -> scheduler.submit(request("late")), CompletionRejectedException.Reason.SHUTTING_DOWN);
        assertThat(worker.batches).isEmpty();
        assertThat(usage.rows).isEmpty();
    }

    @Test
    void aFullUsageBacklogTurnsTheRequestAwayUnsentAndUnbilled() throws Exception {
        // Given a store that is away, no journal, and a ledger holding the one row it could not write
        var store = SaboteurUsageRepository.awayForever();
        var worker = new SpyWorker();
        // (the writer waits minutes before it tries the store again: saturated only for its 10 ms first back-off, the
        // ledger could be missed saturated on a loaded machine)
        var ledger = ledger(store, 1, Duration.ofMinutes(10));
        var scheduler = start(worker, ledger, policy(32, 100));
        var unbillable = scheduler.submit(request("generated"));
        assertThat(unbillable).failsWithin(Duration.ofSeconds(SLACK_SECONDS)); // 503: its row is nowhere durable
        awaitCondition(ledger::saturated);

        // When a request arrives, then it is refused, and the worker saw only the first one
        assertRefused(() -> scheduler.submit(request("refused")), CompletionRejectedException.Reason.USAGE_BACKLOG);
        assertThat(worker.prompts()).containsExactly("generated");
    }

    @Test
    void requestsStillWaitingWhenTheGracePeriodEndsAre503AndThoseAtTheWorker504() throws Exception {
        // Given the only batch slot held by a hanging call, a batch of one waiting for that slot, and one more queued
        var worker = SaboteurWorker.on("hang", SaboteurWorker.Sabotage.HANG);
        var scheduler = start(worker, ledger(usage, 1000), policy(1, 100));
        var atTheWorker = scheduler.submit(request("hang"));
        awaitCondition(() -> worker.batches.size() == 1);
        var waitingForASlot = scheduler.submit(request("waits for a slot"));
        // not a synchronisation: lets the loop take it into a batch that waits for the slot (the case this test is
        // for); had the loop not taken it yet, it would be answered the same way from the queue
        Thread.sleep(100);

        // When the scheduler shuts down and the grace period ends before the worker answers
        assertThat(scheduler.shutdown(Duration.ofMillis(200))).isFalse();

        // Then the request that never reached the worker is refused as shutting down (503), unsent
        assertThat(failureOf(waitingForASlot)).isInstanceOfSatisfying(CompletionRejectedException.class,
                rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.SHUTTING_DOWN));
        assertThat(worker.prompts()).doesNotContain("waits for a slot");
        // And the one the worker had is abandoned as timed out (504): it may have been generated, never a 503
        assertThat(failureOf(atTheWorker)).isInstanceOf(WorkerException.TimedOut.class);
        assertThat(usage.rows).isEmpty();
    }

    @Test
    void aWorkerThatCannotBeReachedFailsTheBatchUnbilled() throws Exception {
        // Given a worker adapter that could not connect (the only causes of Unavailable: WorkerEndpoint, WorkerPool)
        var worker = SaboteurWorker.on("nobody there", SaboteurWorker.Sabotage.THROW_UNAVAILABLE);
        var scheduler = start(worker, ledger(usage, 1000), policy(1, 100));

        // When a request is sent, then it fails as unavailable (503)
        assertThat(failureOf(scheduler.submit(request("nobody there")))).isInstanceOf(WorkerException.Unavailable.class);

        // And it is not billed: the next request served is the only row
        var next = request("served after");
        scheduler.submit(next).get(SLACK_SECONDS, TimeUnit.SECONDS);
        awaitCondition(() -> !usage.rows.isEmpty());
        assertThat(usage.rows).singleElement().satisfies(row -> assertThat(row.requestId()).isEqualTo(next.requestId()));
    }

    @Test
    void aRequestWhoseDeadlinePassesAtTheWorkerIsA504AndBilledNeverA503() throws Exception {
        // Given a worker that takes half a second
        var worker = new SpyWorker() {
            @Override
            public List<WorkerOutcome> complete(Batch batch) {
                try {
                    Thread.sleep(500); // the worker's own latency, not a synchronisation
                } catch (InterruptedException e) {
                    throw new WorkerException.TimedOut("interrupted", e);
                }
                return super.complete(batch);
            }
        };
        var scheduler = start(worker, ledger(usage, 1000), policy(1, 100));

        // When a request allows itself 100 ms, then it fails with its deadline (504), not as unavailable
        var hurried = request("hurried");
        assertThat(failureOf(scheduler.submit(hurried, Duration.ofMillis(100)))).isInstanceOf(DeadlineExceededException.class);

        // And what the worker generated is billed: a retry elsewhere would bill it twice, so it must not be a 503
        awaitCondition(() -> usage.rows.size() == 1);
        assertThat(usage.rows).singleElement().satisfies(row -> assertThat(row.requestId()).isEqualTo(hurried.requestId()));
    }

    // --- helpers

    private UsageLedger ledger(UsageRepository store, int capacity) {
        return ledger(store, capacity, Duration.ofMillis(10));
    }

    private UsageLedger ledger(UsageRepository store, int capacity, Duration backoff) {
        var ledger = new UsageLedger(store, capacity, 100, backoff, backoff.multipliedBy(10), Ticker.system(),
                UsageEvents.NONE).start();
        ledgers.add(ledger);
        return ledger;
    }

    private Scheduler start(WorkerApi worker, UsageLedger ledger, SchedulerPolicy policy) {
        var scheduler = new Scheduler(worker, ledger, policy, Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();
        started.add(scheduler);
        return scheduler;
    }

    /** Batches of one, sent at once, at most {@code slots} at the worker, room for {@code queue} waiting. */
    private static SchedulerPolicy policy(int slots, int queue) {
        return new SchedulerPolicy(1, Duration.ZERO, slots, queue, Duration.ofSeconds(60), Duration.ofSeconds(60));
    }

    private static CompletionRequest request(String prompt) {
        return new CompletionRequest(UUID.randomUUID(), 42, prompt, new GenerationParameters(16));
    }

    private static void assertRefused(org.assertj.core.api.ThrowableAssert.ThrowingCallable submit,
            CompletionRejectedException.Reason reason) {
        assertThatThrownBy(submit).isInstanceOfSatisfying(CompletionRejectedException.class, rejected -> {
            assertThat(rejected.reason()).isEqualTo(reason);
            assertThat(rejected.retryAfter()).isGreaterThanOrEqualTo(Duration.ofSeconds(1));
        });
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

    private static void awaitCondition(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(SLACK_SECONDS);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within " + SLACK_SECONDS + " s");
            }
            Thread.sleep(5);
        }
    }
}
