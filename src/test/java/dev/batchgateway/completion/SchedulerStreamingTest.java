package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** How a batch's progress reaches its streaming callers, and how a batch's outcome is billed per caller. */
class SchedulerStreamingTest {

    private static final long SLACK_SECONDS = 10;

    private final SpyUsageRepository usage = new SpyUsageRepository();
    private final UsageLedger ledger =
            new UsageLedger(usage, 1000, 100, Duration.ofMillis(5), Duration.ofMillis(50), Ticker.system(), UsageEvents.NONE)
                    .start();
    private final List<Scheduler> started = new ArrayList<>();

    @AfterEach
    void stop() throws InterruptedException {
        for (Scheduler scheduler : started) {
            scheduler.shutdown(Duration.ofSeconds(1));
        }
        ledger.close(Duration.ZERO);
    }

    @Test
    void aStreamingCallerGetsItsOwnPiecesInOrderAndNeverAnEmptyOne() throws Exception {
        // Given a worker that reports each prompt's text in three pieces, one of them empty
        var worker = new ProgressWorker((batch, progress) -> {
            for (int i = 0; i < batch.size(); i++) {
                progress.text(i, batch.prompts().get(i) + " 1");
                progress.text(i, "");
                progress.text(i, " 2");
            }
            return generated(batch);
        });
        var scheduler = start(worker, 2);

        // When one caller streams and the other waits for the whole completion, in one batch
        List<String> pieces = new CopyOnWriteArrayList<>();
        var streaming = scheduler.submit(request("a"), Duration.ofSeconds(60), CallerPresence.ASSUMED, pieces::add);
        var whole = scheduler.submit(request("b"), Duration.ofSeconds(60), CallerPresence.ASSUMED, Deltas.NONE);

        // Then the streaming caller got exactly its own non-empty pieces, in order, and both their completions
        assertThat(await(streaming).text()).isEqualTo("answer to a");
        assertThat(await(whole).text()).isEqualTo("answer to b");
        assertThat(pieces).containsExactly("a 1", " 2");
        // and the worker was asked to stream, since one caller of the batch wanted it
        assertThat(worker.streamed).containsExactly(true);
    }

    @Test
    void aStreamsTextGoesOutAsItComesButItsEndWaitsForItsUsageRow() throws Exception {
        // Given a store that holds its writes until told to go on, and a worker that streams one piece
        var held = new HeldUsageRepository();
        var heldLedger = new UsageLedger(held, 1000, 100, Duration.ofMillis(5), Duration.ofMillis(50), Ticker.system(),
                UsageEvents.NONE).start();
        var worker = new ProgressWorker((batch, progress) -> {
            progress.text(0, "piece");
            return generated(batch);
        });
        var policy = new SchedulerPolicy(1, Duration.ofSeconds(30), 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60));
        var scheduler = new Scheduler(worker, heldLedger, policy, Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();
        started.add(scheduler);
        try {
            // When a caller streams and its row is being written
            List<String> pieces = new CopyOnWriteArrayList<>();
            var streaming = scheduler.submit(request("s"), Duration.ofSeconds(60), CallerPresence.ASSUMED, pieces::add);
            assertThat(held.entered.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();

            // Then its text has gone out, but not its end
            assertThat(pieces).containsExactly("piece");
            assertThat(streaming).isNotDone();

            // When the write commits, then the stream ends, its row in the store
            held.gate.countDown();
            assertThat(await(streaming).text()).isEqualTo("answer to s");
            assertThat(held.rows).hasSize(1);
        } finally {
            scheduler.shutdown(Duration.ofSeconds(1));
            heldLedger.close(Duration.ZERO);
        }
    }

    @Test
    void aBatchNobodyStreamsIsNotStreamedFromTheWorker() throws Exception {
        // Given a worker that notes whether it was asked to stream
        var worker = new ProgressWorker((batch, progress) -> generated(batch));
        var scheduler = start(worker, 2);

        // When two callers wait for whole completions
        var first = scheduler.submit(request("a"), Duration.ofSeconds(60), CallerPresence.ASSUMED, Deltas.NONE);
        var second = scheduler.submit(request("b"));
        await(first);
        await(second);

        // Then the worker was told nobody streams
        assertThat(worker.streamed).containsExactly(false);
    }

    @Test
    void progressTellsTheWorkerWhenNoCallerOfTheBatchWaitsAnyMore() throws Exception {
        // Given a worker that reports text, pausing after each report until the test has acted
        var firstReported = new CountDownLatch(1);
        var firstGone = new CountDownLatch(1);
        var secondReported = new CountDownLatch(1);
        var secondGone = new CountDownLatch(1);
        List<Boolean> keepGoing = new CopyOnWriteArrayList<>();
        var worker = new ProgressWorker((batch, progress) -> {
            keepGoing.add(progress.text(0, "a 1"));
            firstReported.countDown();
            awaitLatch(firstGone);
            keepGoing.add(progress.text(0, "a 2"));
            secondReported.countDown();
            awaitLatch(secondGone);
            keepGoing.add(progress.text(1, "b 1"));
            return generated(batch);
        });
        var scheduler = start(worker, 2);
        List<String> firstPieces = new CopyOnWriteArrayList<>();
        List<String> secondPieces = new CopyOnWriteArrayList<>();
        var first = scheduler.submit(request("a"), Duration.ofSeconds(60), CallerPresence.ASSUMED, firstPieces::add);
        var second = scheduler.submit(request("b"), Duration.ofSeconds(60), CallerPresence.ASSUMED, secondPieces::add);

        // When the first caller leaves after its first piece
        assertThat(firstReported.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        first.cancel(false);
        firstGone.countDown();

        // Then its later piece is not handed to it, and the worker goes on: the second caller still waits
        assertThat(secondReported.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        assertThat(firstPieces).containsExactly("a 1");

        // When the second caller leaves too
        second.cancel(false);
        secondGone.countDown();

        // Then the worker is told nobody waits any more, and nothing more reaches either caller
        awaitCondition(() -> keepGoing.size() == 3);
        assertThat(keepGoing).containsExactly(true, true, false);
        assertThat(secondPieces).isEmpty();

        // And both are billed, as callers that left after their batch was sent
        var rows = settledRows();
        assertThat(rows).extracting(UsageRecord::outcome).containsExactly(UsageOutcome.CLIENT_GONE, UsageOutcome.CLIENT_GONE);
    }

    @Test
    void aStreamedBatchThatBreaksAfterCountingIsBilledWhatTheWorkerCounted() throws Exception {
        // Given a worker that counts tokens for the first prompt, sends some text, then loses its server
        var broken = new WorkerException.Unavailable("the stream broke");
        var worker = new ProgressWorker((batch, progress) -> {
            progress.counted(0, new TokenUsage(5, 3));
            progress.text(0, "par");
            throw broken;
        });
        var scheduler = start(worker, 2);

        // When a streaming caller and a waiting one share the batch
        var streaming = request("streams");
        var waiting = request("waits");
        var streamed = scheduler.submit(streaming, Duration.ofSeconds(60), CallerPresence.ASSUMED, delta -> {});
        var whole = scheduler.submit(waiting);

        // Then both fail with the worker's failure
        assertThat(failureOf(streamed)).isSameAs(broken);
        assertThat(failureOf(whole)).isSameAs(broken);

        // And exactly the counted prompt is billed, what was counted, as a broken stream, under the worker's model
        assertThat(settledRows()).singleElement().satisfies(row -> {
            assertThat(row.requestId()).isEqualTo(streaming.requestId());
            assertThat(row.userId()).isEqualTo(42);
            assertThat(row.usage()).isEqualTo(new TokenUsage(5, 3));
            assertThat(row.outcome()).isEqualTo(UsageOutcome.STREAM_FAILED);
            assertThat(row.model()).isEqualTo("progress-model");
        });
    }

    @Test
    void aBatchNobodyStreamedThatBreaksAfterCountingIsNotBilled() throws Exception {
        // Given a worker that counts tokens, then fails the batch
        var worker = new ProgressWorker((batch, progress) -> {
            progress.counted(0, new TokenUsage(5, 3));
            throw new WorkerException.BadAnswer("status 500");
        });
        var scheduler = start(worker, 1);

        // When a caller that waits for the whole completion is in it
        var whole = scheduler.submit(request("waits"));

        // Then it fails and nothing is billed: an answer not streamed is all or nothing
        assertThat(failureOf(whole)).isInstanceOf(WorkerException.BadAnswer.class);
        assertThat(settledRows()).isEmpty();
    }

    @Test
    void aPromptThatFailsAloneInAStreamedBatchIsBilledWhatWasCountedForIt() throws Exception {
        // Given a worker that counts both prompts, then generates the first and fails the second
        var refused = new WorkerException.Rejected("the stream of this prompt broke");
        var worker = new ProgressWorker((batch, progress) -> {
            progress.counted(0, new TokenUsage(2, 2));
            progress.counted(1, new TokenUsage(4, 1));
            return List.of(answer(batch.prompts().getFirst()), new WorkerOutcome.Failed(refused));
        });
        var scheduler = start(worker, 2);

        // When two streaming callers share the batch
        var served = request("served");
        var failed = request("failed");
        var first = scheduler.submit(served, Duration.ofSeconds(60), CallerPresence.ASSUMED, delta -> {});
        var second = scheduler.submit(failed, Duration.ofSeconds(60), CallerPresence.ASSUMED, delta -> {});

        // Then the first is served, the second gets its own failure
        assertThat(await(first).text()).isEqualTo("answer to served");
        assertThat(failureOf(second)).isSameAs(refused);

        // And the first is billed its whole answer, the second what was counted before it broke
        var rows = settledRows();
        assertThat(rows).hasSize(2);
        assertThat(rows).filteredOn(row -> row.requestId().equals(served.requestId())).singleElement()
                .satisfies(row -> {
                    assertThat(row.outcome()).isEqualTo(UsageOutcome.SERVED);
                    assertThat(row.usage()).isEqualTo(answer("served").usage());
                });
        assertThat(rows).filteredOn(row -> row.requestId().equals(failed.requestId())).singleElement()
                .satisfies(row -> {
                    assertThat(row.outcome()).isEqualTo(UsageOutcome.STREAM_FAILED);
                    assertThat(row.usage()).isEqualTo(new TokenUsage(4, 1));
                });
    }

    @Test
    void aPromptTheWorkerGaveNoResultForFailsAloneAsABadAnswer() throws Exception {
        // Given a worker whose answer holds a hole for the second prompt
        var worker = new ProgressWorker((batch, progress) -> {
            var outcomes = new ArrayList<WorkerOutcome>();
            outcomes.add(answer(batch.prompts().getFirst()));
            outcomes.add(null);
            return outcomes;
        });
        var scheduler = start(worker, 2);

        // When two callers share the batch
        var first = scheduler.submit(request("one"));
        var second = scheduler.submit(request("two"));

        // Then the first is served, the second fails as a bad answer, and only the first is billed
        assertThat(await(first).text()).isEqualTo("answer to one");
        assertThat(failureOf(second)).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker gave no result for this prompt");
        assertThat(settledRows()).extracting(UsageRecord::requestId).containsExactly(await(first).requestId());
    }

    @Test
    void whatBecameOfEachCallerIsRecordedWithItsRow() throws Exception {
        // Given a worker that holds its batch until told to answer
        var dispatched = new CountDownLatch(1);
        var release = new CountDownLatch(1);
        var worker = new ProgressWorker((batch, progress) -> {
            dispatched.countDown();
            awaitLatch(release);
            return generated(batch);
        });
        var scheduler = start(worker, 3);

        // When one caller stays, one cancels and one sees its deadline pass while the worker is busy
        var stays = request("stays");
        var cancels = request("cancels");
        var late = request("late");
        var staying = scheduler.submit(stays);
        var cancelling = scheduler.submit(cancels);
        var expiring = scheduler.submit(late, Duration.ofSeconds(3));
        assertThat(dispatched.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        cancelling.cancel(false);
        assertThat(failureOf(expiring)).isInstanceOf(DeadlineExceededException.class);
        release.countDown();
        await(staying);

        // Then each is billed, with what became of it
        var rows = settledRows();
        assertThat(rows).hasSize(3);
        assertThat(outcomeOf(rows, stays)).isEqualTo(UsageOutcome.SERVED);
        assertThat(outcomeOf(rows, cancels)).isEqualTo(UsageOutcome.CLIENT_GONE);
        assertThat(outcomeOf(rows, late)).isEqualTo(UsageOutcome.DEADLINE);
    }

    @Test
    void aBatchForAModelIsBilledUnderThatModelNotTheWorkersDefault() throws Exception {
        // Given a worker whose default model is progress-model
        var scheduler = start(new ProgressWorker((batch, progress) -> generated(batch)), 1);

        // When a request names its model
        var named = new CompletionRequest(UUID.randomUUID(), 7, "hello",
                new GenerationParameters("named-model", 16, null, null, List.of(), null));
        await(scheduler.submit(named));

        // Then its row carries that model
        assertThat(settledRows()).singleElement().satisfies(row -> assertThat(row.model()).isEqualTo("named-model"));
    }

    @Test
    void aWorkerWithoutStreamingOfItsOwnReportsEachWholeTextOnce() throws Exception {
        // Given a worker that only completes whole batches (the port's default reports for it)
        var scheduler = start(new SpyWorker(), 2);

        // When two streaming callers share a batch
        List<String> first = new CopyOnWriteArrayList<>();
        List<String> second = new CopyOnWriteArrayList<>();
        var one = scheduler.submit(request("one"), Duration.ofSeconds(60), CallerPresence.ASSUMED, first::add);
        var two = scheduler.submit(request("two"), Duration.ofSeconds(60), CallerPresence.ASSUMED, second::add);
        await(one);
        await(two);

        // Then each got its whole text as one piece
        assertThat(first).containsExactly("completed: one");
        assertThat(second).containsExactly("completed: two");
    }

    @Test
    void aStreamedBatchWithTheWrongNumberOfResultsIsBilledWhatTheWorkerCounted() throws Exception {
        // Given a worker that streams and counts one prompt, then answers one result too many
        var worker = new ProgressWorker((batch, progress) -> {
            progress.counted(0, new TokenUsage(6, 2));
            return List.of(answer("one"), answer("two"));
        });
        var scheduler = start(worker, 1);

        // When a streaming caller is in the batch
        var streaming = request("streams");
        var completion = scheduler.submit(streaming, Duration.ofSeconds(60), CallerPresence.ASSUMED, delta -> {});

        // Then it fails on the miscount, and is billed what was counted, as a broken stream
        assertThat(failureOf(completion)).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker answered 2 results for 1 prompts");
        assertThat(settledRows()).singleElement().satisfies(row -> {
            assertThat(row.requestId()).isEqualTo(streaming.requestId());
            assertThat(row.usage()).isEqualTo(new TokenUsage(6, 2));
            assertThat(row.outcome()).isEqualTo(UsageOutcome.STREAM_FAILED);
        });
    }

    @Test
    void aStreamedBatchAbandonedAtTheWorkerTimeoutIsBilledWhatTheWorkerCounted() throws Exception {
        // Given a worker that counts a prompt, then ignores being interrupted and answers only when let go
        var release = new CountDownLatch(1);
        var interrupted = new CountDownLatch(1);
        var worker = new ProgressWorker((batch, progress) -> {
            progress.counted(0, new TokenUsage(9, 4));
            while (true) {
                try {
                    release.await();
                    return generated(batch);
                } catch (InterruptedException e) {
                    interrupted.countDown();
                }
            }
        });
        var policy = new SchedulerPolicy(1, Duration.ZERO, 4, 100, Duration.ofSeconds(60), Duration.ofMillis(200));
        var scheduler = new Scheduler(worker, ledger, policy, Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();
        started.add(scheduler);

        // When a streaming caller's batch outlives the worker timeout, and the worker answers after all
        var streaming = request("streams");
        var completion = scheduler.submit(streaming, Duration.ofSeconds(60), CallerPresence.ASSUMED, delta -> {});
        assertThat(failureOf(completion)).isInstanceOf(WorkerException.TimedOut.class);
        assertThat(interrupted.await(SLACK_SECONDS, TimeUnit.SECONDS)).isTrue();
        release.countDown();

        // Then the caller was answered with the timeout, and billed what the worker had counted
        assertThat(settledRows()).singleElement().satisfies(row -> {
            assertThat(row.usage()).isEqualTo(new TokenUsage(9, 4));
            assertThat(row.outcome()).isEqualTo(UsageOutcome.STREAM_FAILED);
        });
    }

    @Test
    void aBatchThatEndsWithoutAnAnswerForItsCallersFailsThemAllTheSame() throws Exception {
        // Given events that break when a batch finishes, after the worker answered
        SchedulerEvents breaking = new SchedulerEvents() {
            @Override
            public void batchFinished(Batch batch, Duration latency, RuntimeException failure) {
                throw new IllegalStateException("a broken metrics observer");
            }
        };
        var policy = new SchedulerPolicy(1, Duration.ZERO, 1, 100, Duration.ofSeconds(60), Duration.ofSeconds(60));
        var scheduler = new Scheduler(new SpyWorker(), ledger, policy, Ticker.system(), Clock.systemUTC(), breaking).start();
        started.add(scheduler);

        // When a request is sent
        var completion = scheduler.submit(request("x"));

        // Then its caller is answered with a failure rather than left waiting, and the batch slot is free again
        assertThat(failureOf(completion)).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the batch ended without an answer for this request");
        assertThat(failureOf(scheduler.submit(request("y")))).hasMessage("the batch ended without an answer for this request");
    }

    // --- helpers

    /** A worker that streams: what it does with a batch and its progress is the test's; notes each streamed(). */
    private static final class ProgressWorker implements WorkerApi {
        final List<Boolean> streamed = new CopyOnWriteArrayList<>();
        private final BiFunction<Batch, BatchProgress, List<WorkerOutcome>> behaviour;

        ProgressWorker(BiFunction<Batch, BatchProgress, List<WorkerOutcome>> behaviour) {
            this.behaviour = behaviour;
        }

        @Override
        public List<WorkerOutcome> complete(Batch batch) {
            throw new AssertionError("the scheduler calls the streaming method");
        }

        @Override
        public List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
            streamed.add(progress.streamed());
            return behaviour.apply(batch, progress);
        }

        @Override
        public String model() {
            return "progress-model";
        }
    }

    private static List<WorkerOutcome> generated(Batch batch) {
        return batch.prompts().stream().<WorkerOutcome>map(SchedulerStreamingTest::answer).toList();
    }

    private static WorkerOutcome.Generated answer(String prompt) {
        return new WorkerOutcome.Generated("answer to " + prompt, new TokenUsage(prompt.length(), 3), FinishReason.STOP);
    }

    private Scheduler start(WorkerApi worker, int batchSize) {
        var policy = new SchedulerPolicy(batchSize, Duration.ofSeconds(30), 4, 100, Duration.ofSeconds(60), Duration.ofSeconds(60));
        var scheduler = new Scheduler(worker, ledger, policy, Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();
        started.add(scheduler);
        return scheduler;
    }

    private List<UsageRecord> settledRows() throws InterruptedException {
        for (Scheduler scheduler : started) {
            scheduler.shutdown(Duration.ofSeconds(SLACK_SECONDS));
        }
        ledger.close(Duration.ofSeconds(SLACK_SECONDS));
        return List.copyOf(usage.rows);
    }

    private static UsageOutcome outcomeOf(List<UsageRecord> rows, CompletionRequest request) {
        return rows.stream().filter(row -> row.requestId().equals(request.requestId())).findFirst().orElseThrow().outcome();
    }

    private static CompletionRequest request(String prompt) {
        return SchedulerTest.request(prompt);
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

    private static void awaitLatch(CountDownLatch latch) {
        try {
            if (!latch.await(SLACK_SECONDS, TimeUnit.SECONDS)) {
                throw new AssertionError("the test never let the worker go on");
            }
        } catch (InterruptedException e) {
            throw new WorkerException.TimedOut("interrupted", e);
        }
    }

    private static void awaitCondition(java.util.function.BooleanSupplier condition) throws InterruptedException {
        SchedulerTest.awaitCondition(condition);
    }
}
