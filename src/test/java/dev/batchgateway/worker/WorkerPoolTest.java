package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.ManualTicker;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** The pool's rotation: least batches in flight, per-worker limit, back-off, health probes, fail fast. */
class WorkerPoolTest {

    private static final Duration BACK_OFF = Duration.ofSeconds(5);
    private final ManualTicker ticker = new ManualTicker();
    private final ScriptedWorker a = new ScriptedWorker("http://a");
    private final ScriptedWorker b = new ScriptedWorker("http://b");

    private static Batch batch(String prompt) {
        return new Batch(1, new GenerationParameters(4), List.of(prompt));
    }

    private WorkerPool pool(int perWorker) {
        return new WorkerPool(List.of(a, b), perWorker, BACK_OFF, Duration.ofSeconds(40), ticker);
    }

    private static CompletableFuture<List<WorkerOutcome>> inBackground(WorkerPool pool, Batch batch) {
        return CompletableFuture.supplyAsync(() -> pool.complete(batch), command -> Thread.ofVirtual().start(command));
    }

    @Test
    void eachBatchGoesToTheWorkerWithFewestBatchesInFlight() throws Exception {
        // Given a pool of two where worker a holds its calls
        var pool = pool(8);
        var release = new CountDownLatch(1);
        a.hold = release;
        b.hold = release;

        // When three batches arrive while the first ones are in flight
        var first = inBackground(pool, batch("1"));
        awaitTrue(() -> a.batches.size() + b.batches.size() == 1);
        var second = inBackground(pool, batch("2"));
        awaitTrue(() -> a.batches.size() == 1 && b.batches.size() == 1);
        release.countDown();
        first.get(10, TimeUnit.SECONDS);
        second.get(10, TimeUnit.SECONDS);

        // Then the second went to the idle worker, not the busy one
        assertThat(a.batches).hasSize(1);
        assertThat(b.batches).hasSize(1);
    }

    @Test
    void noWorkerGetsMoreThanItsLimitOfBatchesAndABatchWaitsForASlot() throws Exception {
        // Given a pool with one batch per worker and worker b out of rotation
        var pool = pool(1);
        b.failure = () -> new WorkerException.Unavailable("refused");
        a.hold = new CountDownLatch(1);
        var first = takeOutB(pool);

        // When a holds a batch and another batch arrives
        var held = inBackground(pool, batch("held"));
        awaitTrue(() -> a.batches.size() == 1 + first);
        var waiting = inBackground(pool, batch("waiting"));

        // Then that batch is not sent to a while a is at its limit
        Thread.sleep(300); // a window in which a wrong pool would have sent it
        assertThat(a.batches).hasSize(1 + first);
        assertThat(waiting).isNotDone();

        // When a's batch finishes, the waiting batch goes to a
        a.hold.countDown();
        held.get(10, TimeUnit.SECONDS);
        waiting.get(10, TimeUnit.SECONDS);
        assertThat(a.batches).extracting(batch -> batch.prompts().getFirst()).endsWith("held", "waiting");
    }

    @Test
    void aBatchWaitingForASlotGivesUpWhenInterrupted() throws Exception {
        // Given a pool whose only worker in rotation is at its limit
        var pool = pool(1);
        b.failure = () -> new WorkerException.Unavailable("refused");
        a.hold = new CountDownLatch(1);
        var first = takeOutB(pool);
        var held = inBackground(pool, batch("held"));
        awaitTrue(() -> a.batches.size() == 1 + first);

        // When a batch waits for a slot and the scheduler's watchdog interrupts it
        var failure = new CompletableFuture<Throwable>();
        var waiter = Thread.ofVirtual().start(() -> {
            try {
                pool.complete(batch("waiting"));
                failure.complete(null);
            } catch (RuntimeException e) {
                failure.complete(e);
            }
        });
        awaitTrue(() -> waiter.getState() == Thread.State.TIMED_WAITING || waiter.getState() == Thread.State.WAITING);
        waiter.interrupt();

        // Then it fails as timed out, and never reached a worker
        assertThat(failure.get(10, TimeUnit.SECONDS)).isInstanceOf(WorkerException.TimedOut.class);
        assertThat(a.batches).hasSize(1 + first);
        a.hold.countDown();
        held.get(10, TimeUnit.SECONDS);
    }

    @Test
    void aWorkerThatCannotBeReachedLeavesTheRotationAndWithNoWorkerLeftBatchesFailAtOnce() {
        // Given two workers that refuse connections
        var pool = pool(8);
        a.failure = () -> new WorkerException.Unavailable("refused");
        b.failure = () -> new WorkerException.TimedOut("no answer");

        // When each has failed a batch
        assertThatThrownBy(() -> pool.complete(batch("1"))).isInstanceOf(WorkerException.class);
        assertThatThrownBy(() -> pool.complete(batch("2"))).isInstanceOf(WorkerException.class);

        // Then both are out, and the next batch fails as unavailable without calling either
        assertThat(pool.inRotation("http://a")).isFalse();
        assertThat(pool.inRotation("http://b")).isFalse();
        assertThatThrownBy(() -> pool.complete(batch("3")))
                .isInstanceOf(WorkerException.Unavailable.class)
                .hasMessageContaining("no worker is in rotation");
        assertThat(a.batches.size() + b.batches.size()).isEqualTo(2);
    }

    @Test
    void aBadAnswerKeepsTheWorkerInRotation() {
        var pool = pool(8);
        a.failure = () -> new WorkerException.BadAnswer("HTTP 500");
        b.failure = () -> new WorkerException.BadAnswer("HTTP 500");

        assertThatThrownBy(() -> pool.complete(batch("1"))).isInstanceOf(WorkerException.BadAnswer.class);

        assertThat(pool.inRotation("http://a")).isTrue();
        assertThat(pool.inRotation("http://b")).isTrue();
    }

    @Test
    void aWorkerComesBackOnlyAfterItsBackOffAndAHealthyProbe() throws Exception {
        // Given a pool of one, out of rotation after a refused connection, its health check failing
        var pool = new WorkerPool(List.of(a), 8, BACK_OFF, Duration.ofSeconds(40), ticker);
        a.failure = () -> new WorkerException.Unavailable("refused");
        assertThatThrownBy(() -> pool.complete(batch("1"))).isInstanceOf(WorkerException.Unavailable.class);
        a.failure = null;
        a.healthy = false;

        // When batches arrive before the back-off has passed, then nothing is probed
        ticker.advance(BACK_OFF.minusMillis(1));
        assertThatThrownBy(() -> pool.complete(batch("2"))).isInstanceOf(WorkerException.Unavailable.class);
        assertThat(a.probes.get()).isZero();

        // When one arrives after it, then a probe runs, fails, and the back-off doubles
        ticker.advance(Duration.ofMillis(1));
        assertThatThrownBy(() -> pool.complete(batch("3"))).isInstanceOf(WorkerException.Unavailable.class);
        awaitTrue(() -> a.probes.get() == 1 && !pool.probing("http://a"));
        ticker.advance(BACK_OFF);
        assertThatThrownBy(() -> pool.complete(batch("4"))).isInstanceOf(WorkerException.Unavailable.class);
        assertThat(a.probes.get()).isEqualTo(1);

        // When the doubled back-off has passed and the worker is healthy again, then a probe brings it back
        a.healthy = true;
        ticker.advance(BACK_OFF);
        assertThatThrownBy(() -> pool.complete(batch("5"))).isInstanceOf(WorkerException.Unavailable.class);
        awaitTrue(() -> pool.inRotation("http://a"));
        assertThat(pool.complete(batch("6"))).hasSize(1);
        assertThat(a.batches).hasSize(2); // "1" and "6": nothing was sent while it was out
    }

    private int takeOutB(WorkerPool pool) {
        // round-robin start decides who gets the first batch; send until b has failed one
        int toA = 0;
        for (int i = 0; i < 2 && pool.inRotation("http://b"); i++) {
            CountDownLatch hold = a.hold;
            a.hold = null;
            try {
                pool.complete(batch("warm-up"));
                toA++;
            } catch (WorkerException.Unavailable expected) {
                // b left the rotation
            } finally {
                a.hold = hold;
            }
        }
        assertThat(pool.inRotation("http://b")).isFalse();
        return toA;
    }

    private static void awaitTrue(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("condition met within 10 s").isLessThan(deadline);
            Thread.sleep(5); // polls a condition; the deadline above is the bound
        }
    }
}
