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
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** The pool's probes and back-offs at their edges: exactly when a probe starts, who is probed first, what a probe's wait shares. */
class WorkerPoolProbeTest {

    private static final Duration BACK_OFF = Duration.ofSeconds(5);
    private final ManualTicker ticker = new ManualTicker();
    private final ScriptedWorker a = new ScriptedWorker("http://a");
    private final ScriptedWorker b = new ScriptedWorker("http://b");

    @Test
    void aPoolNeedsWorkersAndLimitsOfAtLeastOne() {
        assertThatThrownBy(() -> new WorkerPool(List.of(), 1, 1, BACK_OFF, BACK_OFF, ticker)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new WorkerPool(List.of(a), 0, 1, BACK_OFF, BACK_OFF, ticker)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new WorkerPool(List.of(a), 1, 0, BACK_OFF, BACK_OFF, ticker)).isInstanceOf(IllegalArgumentException.class);

        // one of each is enough: a single timeout then takes the worker out
        var strict = new WorkerPool(List.of(a), 1, 1, BACK_OFF, BACK_OFF, ticker);
        a.failure = () -> new WorkerException.TimedOut("no answer");
        assertThatThrownBy(() -> strict.complete(batch("x"))).isInstanceOf(WorkerException.TimedOut.class);
        assertThat(strict.inRotation("http://a")).isFalse();
        assertThat(strict.model()).isEqualTo("m");
    }

    @Test
    void anOutWorkerIsNotProbedBeforeItsBackOffHasPassedNotEvenInTheBackground() {
        // Given a out of rotation after a refused connection
        var pool = pool(a, b);
        takeOut(pool, a);

        // When a batch arrives a millisecond before a's back-off ends
        ticker.advance(BACK_OFF.minusMillis(1));
        pool.complete(batch("early"));

        // Then no probe of a has started, nor run
        assertThat(pool.probing("http://a")).isFalse();
        assertThat(a.probes).hasValue(0);
    }

    @Test
    void aProbeRunsInTheBackgroundWhileOtherWorkersServe() throws Exception {
        // Given a out of rotation, its health check held, and its back-off over
        var held = new HeldHealth(a);
        var pool = new WorkerPool(List.of(held, b), 8, 3, BACK_OFF, Duration.ofMinutes(1), ticker);
        takeOut(pool, a);
        ticker.advance(BACK_OFF);

        // When a batch arrives
        assertThat(pool.complete(batch("served"))).hasSize(1);

        // Then a's probe runs meanwhile, and b served the batch
        assertThat(held.entered.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(pool.probing("http://a")).isTrue();
        assertThat(b.batches).extracting(batch -> batch.prompts().getFirst()).contains("served");

        // When the probe answers healthy, a is back
        held.release.countDown();
        awaitTrue(() -> pool.inRotation("http://a") && !pool.probing("http://a"));
    }

    @Test
    void aBatchThatFindsItsWorkerBeingProbedWaitsForThatProbesAnswer() throws Exception {
        // Given a single worker out of rotation, whose health check is held
        var held = new HeldHealth(a);
        var pool = new WorkerPool(List.of(held), 8, 3, BACK_OFF, Duration.ofMinutes(1), ticker);
        takeOut(pool, a);
        a.failure = null;

        // When a first batch probes it, and a second arrives while the probe runs
        var first = inBackground(pool, batch("first"));
        assertThat(held.entered.await(10, TimeUnit.SECONDS)).isTrue();
        var second = inBackground(pool, batch("second"));
        awaitTrue(() -> held.calls.get() == 1 && pool.probing("http://a"));

        // Then when the probe answers healthy, both are served, after one probe only
        held.release.countDown();
        assertThat(first.get(10, TimeUnit.SECONDS)).hasSize(1);
        assertThat(second.get(10, TimeUnit.SECONDS)).hasSize(1);
        assertThat(held.calls).hasValue(1);
    }

    @Test
    void aBatchThatSharedAFailedProbeIsNotProbedForAgain() throws Exception {
        // Given a single worker out of rotation and still down, whose health check is held
        var held = new HeldHealth(a);
        var pool = new WorkerPool(List.of(held), 8, 3, BACK_OFF, Duration.ofMinutes(1), ticker);
        takeOut(pool, a);
        a.healthy = false;

        // When a first batch probes it, and a second arrives while the probe runs
        var first = inBackground(pool, batch("first"));
        assertThat(held.entered.await(10, TimeUnit.SECONDS)).isTrue();
        var second = new CompletableFuture<List<WorkerOutcome>>();
        var secondThread = Thread.ofVirtual().start(() -> {
            try {
                second.complete(pool.complete(batch("second")));
            } catch (RuntimeException e) {
                second.completeExceptionally(e);
            }
        });
        // the second batch waits for the running probe (the pool's lock released while it waits)
        awaitTrue(() -> secondThread.getState() == Thread.State.TIMED_WAITING);
        held.release.countDown();

        // Then both fail as unavailable after the one probe: its answer counted for the second batch too
        assertThat(first).failsWithin(Duration.ofSeconds(10)).withThrowableThat().havingCause()
                .isInstanceOf(WorkerException.Unavailable.class);
        assertThat(second).failsWithin(Duration.ofSeconds(10)).withThrowableThat().havingCause()
                .isInstanceOf(WorkerException.Unavailable.class)
                .withMessage("no worker can take the batch: http://a is scripted to be down");
        assertThat(held.calls).hasValue(1);
    }

    @Test
    void withEveryWorkerOutTheOneWhoseBackOffEndsFirstIsProbedFirst() {
        // Given a taken out at once (back-off 5 s); a second later b fails too, and the batch's probe of a fails,
        // doubling a's back-off: b's ends at 6 s, a's at 11 s
        var pool = pool(a, b);
        takeOut(pool, a);
        ticker.advance(Duration.ofSeconds(1));
        a.healthy = false;
        b.failure = () -> new WorkerException.Unavailable("refused");
        assertThatThrownBy(() -> pool.complete(batch("b fails"))).isInstanceOf(WorkerException.Unavailable.class);
        assertThat(pool.inRotation("http://a") || pool.inRotation("http://b")).isFalse();
        assertThat(a.probes).hasValue(1);

        // When both are healthy again and a batch arrives
        a.healthy = true;
        b.failure = null;

        // Then b, listed second but due first, is probed first, answers, and serves the batch; a is not probed again
        assertThat(pool.complete(batch("next"))).singleElement()
                .satisfies(outcome -> assertThat(((WorkerOutcome.Generated) outcome).text()).isEqualTo("http://b:next"));
        assertThat(a.probes).hasValue(1);
    }

    @Test
    void aWorkerThatFailsAgainAfterItsProbeButBeforeAnyAnswerBacksOffTwiceAsLong() throws Exception {
        // Given a taken out (back-off 5 s), then back through a healthy probe
        var pool = pool(a, b);
        takeOut(pool, a);
        ticker.advance(BACK_OFF);
        pool.complete(batch("probe a"));
        awaitTrue(() -> pool.inRotation("http://a"));

        // When a fails again before it answered any batch
        a.failure = () -> new WorkerException.Unavailable("refused again");
        while (pool.inRotation("http://a")) {
            pool.complete(batch("until a fails"));
        }

        // Then its back-off doubled, since nothing reset it
        assertThat(pool.backOff("http://a")).isEqualTo(BACK_OFF.multipliedBy(2));
    }

    @Test
    void aBadAnswerBetweenTimeoutsStartsTheCountAgainLikeAnyAnswer() {
        // Given a single worker that times out twice, answers badly, and times out twice more
        var pool = new WorkerPool(List.of(a), 8, 3, BACK_OFF, BACK_OFF, ticker);
        a.failure = () -> new WorkerException.TimedOut("no answer");
        timeOut(pool, 2);
        a.failure = () -> new WorkerException.BadAnswer("HTTP 500");
        assertThatThrownBy(() -> pool.complete(batch("bad"))).isInstanceOf(WorkerException.BadAnswer.class);
        a.failure = () -> new WorkerException.TimedOut("no answer");
        timeOut(pool, 2);

        // Then it never left the rotation (nor was probed): it answered, if wrongly, so it is alive
        assertThat(pool.inRotation("http://a")).isTrue();
        assertThat(a.probes).hasValue(0);
    }

    @Test
    void theStartUpCheckAsksEveryWorkerAndClosingThePoolClosesThem() throws Exception {
        var closed = new AtomicInteger();
        var pool = new WorkerPool(List.of(new Closing(a, closed), new Closing(b, closed)), 8, 3, BACK_OFF, BACK_OFF, ticker);
        b.healthy = false;

        pool.checkAtStartUp();
        awaitTrue(() -> a.probes.get() == 1 && b.probes.get() == 1);
        assertThat(pool.health()).containsExactly(
                java.util.Map.entry("http://a", WorkerHealth.UP),
                java.util.Map.entry("http://b", WorkerHealth.down("http://b is scripted to be down")));

        pool.close();
        assertThat(closed).hasValue(2);
    }

    @Test
    void aWorkerFoundMisconfiguredLeavesTheRotationAndWithNoOtherABatchFailsBeforeAnythingIsSentUntilAProbeFindsItWell() {
        // Given a single worker whose health check finds it refusing the gateway's key
        var pool = pool(a);
        a.healthy = false;
        a.misconfigured = true;

        // When its health is checked (at start-up, or by readiness), then it is out of rotation
        assertThat(pool.health().get("http://a").misconfigured()).isTrue();
        assertThat(pool.inRotation("http://a")).isFalse();

        // And a batch fails as unavailable, naming why, without reaching it (its probe finds it the same)
        assertThatThrownBy(() -> pool.complete(batch("x")))
                .isInstanceOf(WorkerException.Unavailable.class)
                .hasMessageContaining("http://a is scripted to refuse the key");
        assertThat(a.batches).isEmpty();

        // When the key is fixed, the next batch's probe brings it back and it serves
        a.healthy = true;
        assertThat(pool.complete(batch("y"))).hasSize(1);
        assertThat(pool.inRotation("http://a")).isTrue();
    }

    @Test
    void aWorkerWhoseHealthCheckGetsNoAnswerStaysInRotationUntilABatchCannotReachIt() {
        var pool = pool(a);
        a.healthy = false;

        assertThat(pool.health().get("http://a").up()).isFalse();

        assertThat(pool.inRotation("http://a")).isTrue();
    }

    // --- helpers

    private WorkerPool pool(RemoteWorker... workers) {
        return new WorkerPool(List.of(workers), 8, 3, BACK_OFF, Duration.ofMinutes(1), ticker);
    }

    /** Makes the worker refuse a connection until it leaves the rotation; then it answers again, and is healthy. */
    private static void takeOut(WorkerPool pool, ScriptedWorker worker) {
        worker.failure = () -> new WorkerException.Unavailable("refused");
        for (int i = 0; i < 4 && pool.inRotation(worker.url); i++) {
            try {
                pool.complete(batch("warm-up"));
            } catch (WorkerException.Unavailable lastOne) {
                // the pool's only worker: the batch fails with it
            }
        }
        assertThat(pool.inRotation(worker.url)).isFalse();
        worker.failure = null;
    }

    private static void timeOut(WorkerPool pool, int times) {
        for (int i = 0; i < times; i++) {
            assertThatThrownBy(() -> pool.complete(batch("timeout"))).isInstanceOf(WorkerException.TimedOut.class);
        }
    }

    private static Batch batch(String prompt) {
        return new Batch(1, new GenerationParameters(4), List.of(prompt));
    }

    private static CompletableFuture<List<WorkerOutcome>> inBackground(WorkerPool pool, Batch batch) {
        return CompletableFuture.supplyAsync(() -> pool.complete(batch), command -> Thread.ofVirtual().start(command));
    }

    private static void awaitTrue(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("condition met within 10 s").isLessThan(deadline);
            Thread.sleep(5); // polls a condition; the deadline above is the bound
        }
    }

    /** A worker whose health checks wait until the test releases them. */
    private static final class HeldHealth implements RemoteWorker {
        final ScriptedWorker worker;
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        final AtomicInteger calls = new AtomicInteger();

        HeldHealth(ScriptedWorker worker) {
            this.worker = worker;
        }

        @Override
        public WorkerHealth health() {
            calls.incrementAndGet();
            entered.countDown();
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return worker.health();
        }

        @Override
        public List<WorkerOutcome> complete(Batch batch) {
            return worker.complete(batch);
        }

        @Override
        public String model() {
            return worker.model();
        }

        @Override
        public String url() {
            return worker.url();
        }

        @Override
        public void close() {}
    }

    /** A worker that counts being closed. */
    private record Closing(ScriptedWorker worker, AtomicInteger closed) implements RemoteWorker {
        @Override
        public WorkerHealth health() {
            return worker.health();
        }

        @Override
        public List<WorkerOutcome> complete(Batch batch) {
            return worker.complete(batch);
        }

        @Override
        public String model() {
            return worker.model();
        }

        @Override
        public String url() {
            return worker.url();
        }

        @Override
        public void close() {
            closed.incrementAndGet();
        }
    }
}
