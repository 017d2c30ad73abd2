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
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The scheduler's lanes: a model whose workers hang holds only its own slots, users share a lane fairly, and flex
 * runs on what default leaves.
 */
class LanesTest {

    /** Generous: a loaded two-core CI machine must never make a correct scheduler fail. */
    private static final long SLACK_SECONDS = 10;
    private static final LaneId SPY_DEFAULT = new LaneId("spy-model", ServiceTier.DEFAULT);
    private static final LaneId SPY_FLEX = new LaneId("spy-model", ServiceTier.FLEX);

    private final List<Scheduler> started = new ArrayList<>();

    @AfterEach
    void stopSchedulers() throws InterruptedException {
        for (Scheduler scheduler : started) {
            scheduler.shutdown(Duration.ofSeconds(1));
        }
    }

    @Test
    void aModelWhoseWorkerHangsDoesNotDelayAnotherModel() throws Exception {
        // Given two models behind one worker, two batch slots each, and model a's calls all hanging
        var worker = new SaboteurWorker(SaboteurWorker.Sabotage.HANG, batch -> "a".equals(batch.parameters().model()));
        var events = new LaneEvents();
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 2, 1000, Duration.ofSeconds(60), Duration.ofSeconds(60)), events);

        // When model a has its two slots hung and twenty requests waiting behind them
        List<CompletableFuture<Completion>> forA = new ArrayList<>();
        for (int i = 0; i < 22; i++) {
            forA.add(scheduler.submit(request(7, "a" + i, parameters("a", 4), ServiceTier.DEFAULT)));
        }
        SchedulerTest.awaitCondition(() -> scheduler.batchesInFlight() == 2);

        // Then every request for model b is answered, each in its own batch, at once
        long started = System.nanoTime();
        List<CompletableFuture<Completion>> forB = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            forB.add(scheduler.submit(request(8, "b" + i, parameters("b", 4), ServiceTier.DEFAULT)));
        }
        for (int i = 0; i < forB.size(); i++) {
            assertThat(forB.get(i).get(SLACK_SECONDS, TimeUnit.SECONDS).text()).isEqualTo("completed: b" + i);
        }
        Duration took = Duration.ofNanos(System.nanoTime() - started);
        assertThat(took).as("model b's 16 requests took %d ms behind model a's hung worker, expected well under %d s",
                took.toMillis(), SLACK_SECONDS).isLessThan(Duration.ofSeconds(SLACK_SECONDS));
        // and model a's requests still wait: two at the worker, twenty in their lane
        assertThat(forA).noneMatch(CompletableFuture::isDone);
        assertThat(scheduler.queued(new LaneId("a", ServiceTier.DEFAULT))).isEqualTo(20);
        // and the metrics say that a's lane waited for capacity (b's may have, briefly, for its own two slots), and
        // how long each of b's requests queued
        assertThat(events.blocked).contains(new LaneId("a", ServiceTier.DEFAULT));
        assertThat(events.timeInLane).filteredOn(lane -> lane.equals(new LaneId("b", ServiceTier.DEFAULT))).hasSize(16);
    }

    @Test
    void aUserWithOneRequestIsServedInTheNextBatchWhileAnotherHasHundredsQueued() throws Exception {
        // Given one batch slot, batches of eight, and a worker the test lets through one call at a time
        var worker = new GatedWorker();
        var scheduler = start(worker, new SchedulerPolicy(8, Duration.ZERO, 1, 1000, Duration.ofSeconds(60), Duration.ofSeconds(60)));

        // When a busy user queues three hundred requests, the first batch of them is at the worker, and then a light
        // user sends one
        List<CompletableFuture<Completion>> busy = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            busy.add(scheduler.submit(request(1, "busy" + i, parameters(null, 4), ServiceTier.DEFAULT)));
        }
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1
                && scheduler.queued(SPY_DEFAULT) == 300 - worker.batches.getFirst().size());
        var light = scheduler.submit(request(2, "light", parameters(null, 4), ServiceTier.DEFAULT));
        SchedulerTest.awaitCondition(() -> scheduler.queued(SPY_DEFAULT) == 301 - worker.batches.getFirst().size());
        worker.letThrough(1);

        // Then the very next batch carries the light user's request, not the busy user's next 290
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 2);
        assertThat(worker.batches.get(1).prompts()).contains("light").hasSize(8);
        worker.letThrough(1);
        assertThat(light.get(SLACK_SECONDS, TimeUnit.SECONDS).text()).isEqualTo("completed: light");
        // and the busy user's requests are all served, in the order they came
        worker.letThrough(1000);
        for (var completion : busy) {
            completion.get(SLACK_SECONDS, TimeUnit.SECONDS);
        }
        List<String> busyOrder = worker.prompts().stream().filter(prompt -> prompt.startsWith("busy")).toList();
        assertThat(busyOrder).containsExactlyElementsOf(IntStream.range(0, 300).mapToObj(i -> "busy" + i).toList());
    }

    @Test
    void flexTakesTheEmptySeatsOfADefaultBatchOfItsKeyAndWaitsWhileDefaultRequestsWait() throws Exception {
        // Given one batch slot, batches of four, and a first default batch held at the worker
        var worker = new GatedWorker();
        var events = new LaneEvents();
        var scheduler = start(worker, new SchedulerPolicy(4, Duration.ZERO, 1, 1000, Duration.ofSeconds(60), Duration.ofSeconds(60)), events);
        var first = scheduler.submit(request(1, "d0", parameters(null, 4), ServiceTier.DEFAULT));
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);

        // When two flex requests and one default request of the same parameters wait behind it
        var f1 = scheduler.submit(request(2, "f1", parameters(null, 4), ServiceTier.FLEX));
        var f2 = scheduler.submit(request(3, "f2", parameters(null, 4), ServiceTier.FLEX));
        var d1 = scheduler.submit(request(1, "d1", parameters(null, 4), ServiceTier.DEFAULT));
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 3);
        worker.letThrough(1);

        // Then the default batch leaves with the flex requests in its empty seats
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 2);
        assertThat(worker.batches.get(1).prompts()).containsExactly("d1", "f1", "f2");
        assertThat(events.flexSeats).containsExactly("spy-model 2");

        // When a flex request of other parameters arrives first, then two default requests
        var f3 = scheduler.submit(request(2, "f3", parameters(null, 5), ServiceTier.FLEX));
        var d2 = scheduler.submit(request(1, "d2", parameters(null, 4), ServiceTier.DEFAULT));
        var d3 = scheduler.submit(request(4, "d3", parameters(null, 4), ServiceTier.DEFAULT));
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 3);
        worker.letThrough(1);

        // Then the default requests leave first, alone (the flex one does not fit their batch), and the flex one after
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 3);
        assertThat(worker.batches.get(2).prompts()).containsExactlyInAnyOrder("d2", "d3");
        assertThat(scheduler.queued(SPY_FLEX)).isEqualTo(1);
        worker.letThrough(1);
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 4);
        assertThat(worker.batches.get(3).prompts()).containsExactly("f3");
        assertThat(worker.batches.get(3).parameters().maxTokens()).isEqualTo(5);
        worker.letThrough(1);
        for (var completion : List.of(first, f1, f2, d1, f3, d2, d3)) {
            completion.get(SLACK_SECONDS, TimeUnit.SECONDS);
        }
    }

    @Test
    void aFullFlexBatchDoesNotStartWhileADefaultRequestOfItsModelWaitsEvenOneNotYetReady() throws Exception {
        // Given batches of four that wait half a minute for company, one batch slot, and a first batch held at the worker
        var worker = new GatedWorker();
        var scheduler = start(worker, new SchedulerPolicy(4, Duration.ofSeconds(30), 1, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        for (int i = 0; i < 4; i++) {
            scheduler.submit(request(1, "first" + i, parameters(null, 4), ServiceTier.DEFAULT));
        }
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);

        // When a full batch's worth of flex requests waits beside one default request of other parameters (its batch
        // not ready: one of four, far from its max-wait), and the slot comes free
        for (int i = 0; i < 4; i++) {
            scheduler.submit(request(2, "flex" + i, parameters(null, 4), ServiceTier.FLEX));
        }
        scheduler.submit(request(3, "default0", parameters(null, 5), ServiceTier.DEFAULT));
        SchedulerTest.awaitCondition(() -> scheduler.queued() == 5);
        worker.letThrough(1);
        SchedulerTest.awaitCondition(() -> scheduler.batchesInFlight() == 0);

        // Then the flex batch does not take the slot: the default request's batch, once full, leaves first
        for (int i = 1; i < 4; i++) {
            scheduler.submit(request(3, "default" + i, parameters(null, 5), ServiceTier.DEFAULT));
        }
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 2);
        assertThat(worker.batches.get(1).prompts()).containsExactly("default0", "default1", "default2", "default3");
        worker.letThrough(1);
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 3);
        assertThat(worker.batches.get(2).prompts()).containsExactly("flex0", "flex1", "flex2", "flex3");
        worker.letThrough(1);
    }

    @Test
    void aDefaultBatchThatWaitingFlexRequestsFillIsFullAndLeavesAtOnce() throws Exception {
        // Given batches of four that would wait half a minute for company, and three flex requests waiting (alone they
        // are no batch's worth, and their max-wait is far off)
        var worker = new SpyWorker();
        var events = new LaneEvents();
        var scheduler = start(worker, new SchedulerPolicy(4, Duration.ofSeconds(30), 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60)), events);
        var flex = List.of(
                scheduler.submit(request(2, "f1", parameters(null, 4), ServiceTier.FLEX)),
                scheduler.submit(request(3, "f2", parameters(null, 4), ServiceTier.FLEX)),
                scheduler.submit(request(4, "f3", parameters(null, 4), ServiceTier.FLEX)));
        SchedulerTest.awaitCondition(() -> scheduler.queued(SPY_FLEX) == 3);

        // When one default request of their parameters arrives
        long started = System.nanoTime();
        var standard = scheduler.submit(request(1, "d1", parameters(null, 4), ServiceTier.DEFAULT));

        // Then the four leave together at once, the default request first, as a full batch
        assertThat(standard.get(SLACK_SECONDS, TimeUnit.SECONDS).text()).isEqualTo("completed: d1");
        for (var completion : flex) {
            completion.get(SLACK_SECONDS, TimeUnit.SECONDS);
        }
        Duration took = Duration.ofNanos(System.nanoTime() - started);
        assertThat(took).as("the batch left after %d ms, expected long before its 30 s max-wait", took.toMillis())
                .isLessThan(Duration.ofSeconds(SLACK_SECONDS));
        assertThat(worker.batches).hasSize(1);
        assertThat(worker.batches.getFirst().prompts()).containsExactly("d1", "f1", "f2", "f3");
        assertThat(events.flexSeats).containsExactly("spy-model 3");
    }

    @Test
    void flexHoldsAtMostHalfTheQueueAndIsRefusedAsTooManyBeyondWhileDefaultStillFindsRoom() throws Exception {
        // Given a queue of five, one batch slot, and a batch held at the worker
        var worker = new GatedWorker();
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 1, 5, Duration.ofSeconds(60), Duration.ofSeconds(60)));
        scheduler.submit(request(1, "held", parameters(null, 4), ServiceTier.DEFAULT));
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);

        // When flex requests fill their half (two of five) and a third comes
        scheduler.submit(request(2, "f1", parameters(null, 4), ServiceTier.FLEX));
        scheduler.submit(request(2, "f2", parameters(null, 4), ServiceTier.FLEX));

        // Then it is refused as too many (429), with a time to retry after
        assertThatThrownBy(() -> scheduler.submit(request(2, "f3", parameters(null, 4), ServiceTier.FLEX)))
                .isInstanceOfSatisfying(CompletionRejectedException.class, rejected -> {
                    assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.FLEX_QUEUE_FULL);
                    assertThat(rejected.tooManyRequests()).isTrue();
                    assertThat(rejected.retryAfter()).isGreaterThanOrEqualTo(Duration.ofSeconds(1));
                });
        // and default requests still find the rest of the queue, refused only once the whole queue is full (503)
        scheduler.submit(request(1, "d1", parameters(null, 4), ServiceTier.DEFAULT));
        scheduler.submit(request(1, "d2", parameters(null, 4), ServiceTier.DEFAULT));
        scheduler.submit(request(1, "d3", parameters(null, 4), ServiceTier.DEFAULT));
        assertThatThrownBy(() -> scheduler.submit(request(1, "d4", parameters(null, 4), ServiceTier.DEFAULT)))
                .isInstanceOfSatisfying(CompletionRejectedException.class, rejected -> {
                    assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.QUEUE_FULL);
                    assertThat(rejected.tooManyRequests()).isFalse();
                });
        worker.letThrough(1000);
    }

    @Test
    void aFlexRequestHasItsOwnDeadline() throws Exception {
        // Given flex requests may wait 200 ms, default ones a minute, and the only slot held
        var worker = new GatedWorker();
        var scheduler = start(worker, new SchedulerPolicy(1, Duration.ZERO, 1, 100, Duration.ofSeconds(60),
                Duration.ofSeconds(60), Duration.ofMillis(200)));
        scheduler.submit(request(1, "held", parameters(null, 4), ServiceTier.DEFAULT));
        SchedulerTest.awaitCondition(() -> worker.batches.size() == 1);

        // When a flex request waits behind it
        var flex = scheduler.submit(request(2, "flex", parameters(null, 4), ServiceTier.FLEX));

        // Then it fails at its own deadline, never sent
        assertThatThrownBy(() -> flex.get(SLACK_SECONDS, TimeUnit.SECONDS))
                .isInstanceOf(ExecutionException.class).hasCauseInstanceOf(DeadlineExceededException.class);
        worker.letThrough(1000);
        assertThat(worker.prompts()).containsExactly("held");
    }

    @Test
    void slotsOfAWorkerThatCountsNoneAreTakenWithoutWaitingAndGivenBackOnce() {
        // Given a fixed limit of two slots
        var limit = new SlotLimit(new SpyWorker(), 2);

        // When two are taken, a third is asked for, and one is closed twice
        var first = limit.tryAcquire().orElseThrow();
        var second = limit.tryAcquire().orElseThrow();
        assertThat(limit.tryAcquire()).isEmpty();
        first.close();
        first.close();

        // Then exactly one is free again
        assertThat(limit.inUse()).isEqualTo(1);
        var third = limit.tryAcquire().orElseThrow();
        assertThat(limit.tryAcquire()).isEmpty();
        second.close();
        third.close();
        assertThat(limit.inUse()).isZero();
    }

    // --- helpers

    static GenerationParameters parameters(String model, int maxTokens) {
        return new GenerationParameters(model, maxTokens, null, null, List.of(), null);
    }

    static CompletionRequest request(long user, String prompt, GenerationParameters parameters, ServiceTier tier) {
        return new CompletionRequest(UUID.randomUUID(), user, new Prompt.Text(prompt), parameters, tier);
    }

    private Scheduler start(WorkerApi worker, SchedulerPolicy policy) {
        return start(worker, policy, SchedulerEvents.NONE);
    }

    private Scheduler start(WorkerApi worker, SchedulerPolicy policy, SchedulerEvents events) {
        var ledger = new UsageLedger(new SpyUsageRepository(), 1000, 100, Duration.ofMillis(10), Duration.ofMillis(100),
                Ticker.system(), UsageEvents.NONE).start();
        var scheduler = new Scheduler(worker, ledger, policy, Ticker.system(), Clock.systemUTC(), events).start();
        started.add(scheduler);
        return scheduler;
    }

    /** Records the lanes' events. */
    private static final class LaneEvents implements SchedulerEvents {
        final List<String> flexSeats = new java.util.concurrent.CopyOnWriteArrayList<>();
        final List<LaneId> blocked = new java.util.concurrent.CopyOnWriteArrayList<>();
        final List<LaneId> timeInLane = new java.util.concurrent.CopyOnWriteArrayList<>();

        @Override
        public void blockedOnCapacity(LaneId lane) {
            blocked.add(lane);
        }

        @Override
        public void timeInLane(LaneId lane, Duration waited) {
            timeInLane.add(lane);
        }

        @Override
        public void flexSeatsFilled(String model, int seats) {
            flexSeats.add(model + " " + seats);
        }
    }
}
