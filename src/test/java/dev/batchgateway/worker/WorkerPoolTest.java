package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.ManualTicker;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The pool's rotation: least batches in flight, per-worker limit, which failures take a worker out, back-off and
 * health probes, and never refusing while a worker can answer.
 */
class WorkerPoolTest {

    private static final Duration BACK_OFF = Duration.ofSeconds(5);
    private static final Duration MAX_BACK_OFF = Duration.ofSeconds(40);
    private final ManualTicker ticker = new ManualTicker();
    private final ScriptedWorker a = new ScriptedWorker("http://a");
    private final ScriptedWorker b = new ScriptedWorker("http://b");

    private static Batch batch(String prompt) {
        return new Batch(1, new GenerationParameters(4), List.of(prompt));
    }

    private WorkerPool pool(int perWorker) {
        return new WorkerPool(List.of(a, b), perWorker, 3, BACK_OFF, MAX_BACK_OFF, ticker);
    }

    private WorkerPool poolOfA() {
        return new WorkerPool(List.of(a), 8, 3, BACK_OFF, MAX_BACK_OFF, ticker);
    }

    private static CompletableFuture<List<WorkerOutcome>> inBackground(WorkerPool pool, Batch batch) {
        return CompletableFuture.supplyAsync(() -> pool.complete(batch), command -> Thread.ofVirtual().start(command));
    }

    @Test
    void eachBatchGoesToTheWorkerWithFewestBatchesInFlight() throws Exception {
        // Given a pool of two, each holding its calls until released
        var pool = pool(8);
        var releaseA = new CountDownLatch(1);
        var releaseB = new CountDownLatch(1);
        a.hold = releaseA;
        b.hold = releaseB;
        var first = inBackground(pool, batch("1"));
        awaitTrue(() -> a.batches.size() + b.batches.size() == 1);
        var second = inBackground(pool, batch("2"));
        awaitTrue(() -> a.batches.size() == 1 && b.batches.size() == 1);

        // When b's batch finishes while a's is still in flight, and two more batches come one after the other
        releaseB.countDown();
        awaitTrue(() -> first.isDone() || second.isDone());
        inBackground(pool, batch("3")).get(10, TimeUnit.SECONDS);
        inBackground(pool, batch("4")).get(10, TimeUnit.SECONDS);

        // Then both went to b, the worker with fewer in flight, not in turns (a would still hold one of them)
        assertThat(b.batches).extracting(batch -> batch.prompts().getFirst()).hasSize(3).endsWith("3", "4");
        assertThat(a.batches).hasSize(1);
        releaseA.countDown();
        first.get(10, TimeUnit.SECONDS);
        second.get(10, TimeUnit.SECONDS);
    }

    @Test
    void noWorkerGetsMoreThanItsLimitOfBatchesAndABatchFindsNoSlotWithoutWaiting() throws Exception {
        // Given a pool with one batch per worker and worker b out of rotation
        var pool = pool(1);
        b.failure = () -> new WorkerException.Unavailable("refused");
        b.healthy = false;
        int warmUps = takeOutB(pool);
        a.hold = new CountDownLatch(1);

        // When a holds a batch and another batch asks for a slot
        var held = inBackground(pool, batch("held"));
        awaitTrue(() -> a.batches.size() == 1 + warmUps);

        // Then there is none, at once, and a batch sent anyway fails at once as unavailable without reaching a
        assertThat(pool.tryAcquire()).isEmpty();
        assertThat(pool.inUse()).isEqualTo(1);
        assertThatThrownBy(() -> pool.complete(batch("no room"))).isInstanceOf(WorkerException.Unavailable.class)
                .hasMessageContaining("at its limit");
        assertThat(a.batches).hasSize(1 + warmUps);

        // When a's batch finishes, its slot is free again and the next batch goes to a
        a.hold.countDown();
        held.get(10, TimeUnit.SECONDS);
        try (var slot = pool.tryAcquire().orElseThrow()) {
            slot.complete(batch("next"), dev.batchgateway.completion.BatchProgress.IGNORED);
        }
        assertThat(a.batches).extracting(batch -> batch.prompts().getFirst()).endsWith("held", "next");
        assertThat(pool.inUse()).isZero();
    }

    @Test
    void aSlotIsGivenBackOnceHoweverOftenItIsClosedAndASlotNeverSentGivesItsPlaceBack() {
        // Given a pool of two workers with one slot each
        var pool = pool(1);

        // When both slots are taken, then one is closed twice without a batch
        var first = pool.tryAcquire().orElseThrow();
        var second = pool.tryAcquire().orElseThrow();
        assertThat(pool.tryAcquire()).isEmpty();
        first.close();
        first.close();

        // Then exactly one slot is free again
        assertThat(pool.inUse()).isEqualTo(1);
        var third = pool.tryAcquire().orElseThrow();
        assertThat(pool.tryAcquire()).isEmpty();
        second.close();
        third.close();
        assertThat(pool.inUse()).isZero();
    }

    @Test
    void aBatchRefusedByItsWorkerMovesWithItsSlotToTheOtherEvenAtItsLimit() throws Exception {
        // Given a pool of two with one slot each, b holding a batch, and a that will refuse the connection
        var pool = pool(1);
        b.hold = new CountDownLatch(1);
        var slotOnA = pool.tryAcquire().orElseThrow();
        var held = inBackground(pool, batch("held on b"));
        awaitTrue(() -> b.batches.size() == 1);
        a.failure = () -> new WorkerException.Unavailable("refused");

        // When the batch on a's slot is sent
        var moved = CompletableFuture.supplyAsync(() -> {
            try (slotOnA) {
                return slotOnA.complete(batch("moved"), dev.batchgateway.completion.BatchProgress.IGNORED);
            }
        }, command -> Thread.ofVirtual().start(command));

        // Then it is served by b (one over its limit for a moment) rather than refused, and every slot comes back
        b.hold.countDown();
        assertThat(moved.get(10, TimeUnit.SECONDS)).hasSize(1);
        held.get(10, TimeUnit.SECONDS);
        assertThat(b.batches).extracting(batch -> batch.prompts().getFirst()).containsExactlyInAnyOrder("held on b", "moved");
        assertThat(pool.inUse()).isZero();
    }

    static List<Supplier<WorkerException>> failures() {
        return List.of(
                () -> new WorkerException.BadAnswer("HTTP 500"),
                () -> new WorkerException.Rejected("too long"),
                () -> new WorkerException.TimedOut("no answer"),
                () -> new WorkerException.Unavailable("refused"),
                () -> new WorkerException.Misconfigured("bad key"));
    }

    @ParameterizedTest
    @MethodSource("failures")
    void aFailedCallGivesBackItsSlot(Supplier<WorkerException> failure) throws Exception {
        // Given a single worker with room for one batch, whose calls fail this way
        var pool = new WorkerPool(List.of(a), 1, 3, BACK_OFF, MAX_BACK_OFF, ticker);
        a.failure = failure;

        // When a batch has failed
        assertThatThrownBy(() -> pool.complete(batch("fails"))).isInstanceOf(WorkerException.class);

        // Then the next one is sent to it at once, not stuck behind a slot that was never given back
        a.failure = null;
        assertThat(inBackground(pool, batch("next")).get(10, TimeUnit.SECONDS)).hasSize(1);
        assertThat(a.batches).extracting(batch -> batch.prompts().getFirst()).containsExactly("fails", "next");
    }

    @Test
    void aBadAnswerOrARefusedPromptKeepsTheWorkerInRotation() {
        var pool = pool(8);
        a.failure = () -> new WorkerException.BadAnswer("HTTP 500");
        b.failure = () -> new WorkerException.Rejected("too long");

        assertThatThrownBy(() -> pool.complete(batch("1"))).isInstanceOf(WorkerException.class);
        assertThatThrownBy(() -> pool.complete(batch("2"))).isInstanceOf(WorkerException.class);

        assertThat(a.batches).hasSize(1);
        assertThat(b.batches).hasSize(1);
        assertThat(pool.inRotation("http://a")).isTrue();
        assertThat(pool.inRotation("http://b")).isTrue();
    }

    @Test
    void aSingleWorkerThatTimedOutOnceServesTheVeryNextBatch() {
        // Given a single worker whose call timed out once, a long generation on a busy server
        var pool = poolOfA();
        a.failure = () -> new WorkerException.TimedOut("the worker did not answer within 60000 ms");
        assertThatThrownBy(() -> pool.complete(batch("slow"))).isInstanceOf(WorkerException.TimedOut.class);

        // When it has recovered and the next batch comes, then it is served, and the worker was never out
        a.failure = null;
        assertThat(pool.inRotation("http://a")).isTrue();
        assertThat(pool.complete(batch("next"))).hasSize(1);
        assertThat(a.probes.get()).isZero();
    }

    @Test
    void onlyThreeTimeoutsInARowTakeAWorkerOutAndAnAnswerBetweenStartsTheCountAgain() {
        var pool = poolOfA();
        Supplier<WorkerException> timeout = () -> new WorkerException.TimedOut("no answer");

        // Given two timeouts, an answer, two timeouts: still in
        a.failure = timeout;
        timeOut(pool, 2);
        a.failure = null;
        pool.complete(batch("answered"));
        a.failure = timeout;
        timeOut(pool, 2);
        assertThat(pool.inRotation("http://a")).isTrue();

        // When a third comes in a row, then it is out
        timeOut(pool, 1);
        assertThat(pool.inRotation("http://a")).isFalse();
        assertThat(pool.backOff("http://a")).isEqualTo(BACK_OFF);
    }

    @Test
    void aSingleWorkerThatIsDownFailsTheNextBatchAtOnceNamingWhy() {
        // Given a single worker that refuses connections and fails its health check
        var pool = poolOfA();
        a.failure = () -> new WorkerException.Unavailable("could not connect to the worker");
        a.healthy = false;
        assertThatThrownBy(() -> pool.complete(batch("1"))).isInstanceOf(WorkerException.Unavailable.class);

        // When the next batch comes before its back-off ends
        long started = System.nanoTime();
        assertThatThrownBy(() -> pool.complete(batch("2")))
                .isInstanceOf(WorkerException.Unavailable.class)
                .hasMessage("no worker can take the batch: http://a is scripted to be down");

        // Then the worker was probed for it, not called, and the answer came at once (a second, with slack for a busy machine)
        assertThat(a.probes.get()).isEqualTo(1);
        assertThat(a.batches).hasSize(1);
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(3));
    }

    @Test
    void withEveryWorkerOutABatchProbesThemNowAndGoesToTheFirstThatAnswers() {
        // Given both workers out after refused connections, their back-offs far from over
        var pool = pool(8);
        a.failure = () -> new WorkerException.Unavailable("refused");
        b.failure = () -> new WorkerException.Unavailable("refused");
        a.healthy = false;
        b.healthy = false;
        assertThatThrownBy(() -> pool.complete(batch("1"))).isInstanceOf(WorkerException.Unavailable.class);
        assertThat(pool.inRotation("http://a") || pool.inRotation("http://b")).isFalse();

        // When b comes back and a batch arrives
        b.failure = null;
        b.healthy = true;

        // Then the batch probes the workers, finds b answering, and is served by b
        assertThat(pool.complete(batch("2"))).singleElement()
                .isEqualTo(new WorkerOutcome.Generated("http://b:2", new dev.batchgateway.completion.TokenUsage(1, 1),
                        dev.batchgateway.completion.FinishReason.STOP));
        assertThat(pool.inRotation("http://b")).isTrue();
        assertThat(pool.inRotation("http://a")).isFalse();
    }

    @Test
    void twoWorkersWithOneDownKeepServingEveryBatch() {
        // Given two workers, a refusing connections
        var pool = pool(8);
        a.failure = () -> new WorkerException.Unavailable("refused");
        a.healthy = false;

        // When ten batches come, then every one is served (by b; the one sent to a first moved on to b)
        for (int i = 0; i < 10; i++) {
            assertThat(pool.complete(batch("p" + i))).hasSize(1);
        }
        assertThat(b.batches).hasSize(10);
        assertThat(a.batches).hasSizeLessThanOrEqualTo(1);
    }

    @Test
    void aMisconfiguredWorkerLeavesTheRotationAndItsBatchGoesToTheOther() {
        // Given a worker that does not serve the model, and one that does
        var pool = pool(8);
        a.failure = () -> new WorkerException.Misconfigured("model m is not served by http://a: HTTP 404");

        // When batches come, then all are served by b, and a is out
        for (int i = 0; i < 4; i++) {
            assertThat(pool.complete(batch("p" + i))).hasSize(1);
        }
        assertThat(b.batches).hasSize(4);
        assertThat(pool.inRotation("http://a")).isFalse();
    }

    @Test
    void theBackOffDoublesWithEachFailedProbeUpToItsCapAndStartsAgainAfterAnAnswer() {
        // Given a single worker that refuses connections and fails its health checks
        var pool = poolOfA();
        a.failure = () -> new WorkerException.Unavailable("refused");
        a.healthy = false;
        List<Duration> backOffs = new ArrayList<>();

        // When six batches fail (the first at the call, the others at the probe each makes)
        for (int i = 0; i < 6; i++) {
            assertThatThrownBy(() -> pool.complete(batch("down"))).isInstanceOf(WorkerException.Unavailable.class);
            backOffs.add(pool.backOff("http://a"));
        }

        // Then the back-off doubled each time and stopped at its cap
        assertThat(backOffs).containsExactly(
                Duration.ofSeconds(5), Duration.ofSeconds(10), Duration.ofSeconds(20), Duration.ofSeconds(40),
                Duration.ofSeconds(40), Duration.ofSeconds(40));

        // When the worker is healthy again, answers a batch, and then fails once more
        a.healthy = true;
        a.failure = null;
        assertThat(pool.complete(batch("up"))).hasSize(1);
        assertThat(pool.backOff("http://a")).isNull();
        a.failure = () -> new WorkerException.Unavailable("refused");
        assertThatThrownBy(() -> pool.complete(batch("down again"))).isInstanceOf(WorkerException.Unavailable.class);

        // Then its back-off starts again from the first
        assertThat(pool.backOff("http://a")).isEqualTo(BACK_OFF);
    }

    @Test
    void whileAnotherWorkerServesAnOutWorkerIsProbedOnlyAfterItsBackOffAndComesBackOnlyWhenHealthy() throws Exception {
        // Given a pool of two, a out of rotation after a refused connection, its health check failing
        var pool = pool(8);
        a.failure = () -> new WorkerException.Unavailable("refused");
        a.healthy = false;
        takeOut(pool, a);
        a.failure = null;

        // When batches arrive before the back-off has passed, then b serves them and a is not probed
        ticker.advance(BACK_OFF.minusMillis(1));
        pool.complete(batch("2"));
        assertThat(a.probes.get()).isZero();

        // When one arrives after it, then a probe runs in the background, fails, and the back-off doubles
        ticker.advance(Duration.ofMillis(1));
        pool.complete(batch("3"));
        awaitTrue(() -> a.probes.get() == 1 && !pool.probing("http://a"));
        assertThat(pool.backOff("http://a")).isEqualTo(BACK_OFF.multipliedBy(2));
        ticker.advance(BACK_OFF);
        pool.complete(batch("4"));
        assertThat(a.probes.get()).isEqualTo(1);

        // When the doubled back-off has passed and a is healthy again, then a probe brings it back
        a.healthy = true;
        ticker.advance(BACK_OFF);
        pool.complete(batch("5"));
        awaitTrue(() -> pool.inRotation("http://a"));
        assertThat(a.batches).extracting(batch -> batch.prompts().getFirst()).doesNotContain("2", "3", "4");
    }

    private void timeOut(WorkerPool pool, int times) {
        for (int i = 0; i < times; i++) {
            assertThatThrownBy(() -> pool.complete(batch("timeout"))).isInstanceOf(WorkerException.TimedOut.class);
        }
    }

    /** Sends batches until {@code worker} has failed one and left the rotation; every one of them ends at the other. */
    private int takeOut(WorkerPool pool, ScriptedWorker worker) {
        int sent = 0;
        while (pool.inRotation(worker.url) && sent < 4) {
            pool.complete(batch("warm-up"));
            sent++;
        }
        assertThat(pool.inRotation(worker.url)).isFalse();
        return sent;
    }

    private int takeOutB(WorkerPool pool) {
        return takeOut(pool, b);
    }

    private static void awaitTrue(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("condition met within 10 s").isLessThan(deadline);
            Thread.sleep(5); // polls a condition; the deadline above is the bound
        }
    }
}
