package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class UsageLedgerTest {

    /** Generous: a loaded two-core CI machine must never make a correct ledger fail. */
    private static final Duration SLACK = Duration.ofSeconds(10);

    private final RecordingEvents events = new RecordingEvents();
    private final List<UsageLedger> started = new ArrayList<>();

    @AfterEach
    void closeLedgers() throws InterruptedException {
        for (UsageLedger ledger : started) {
            ledger.close(Duration.ZERO);
        }
    }

    @Test
    void rowsAreWrittenOffTheCallersThreadAndCoalesced() throws Exception {
        // Given a store that holds its first write until told to go on
        var store = new HeldUsageRepository();
        var ledger = start(store, 1000, 1000);

        // When one batch's rows arrive, then seven more batches while the first write is held
        ledger.record(rows(8));
        assertThat(store.entered.await(SLACK.toSeconds(), TimeUnit.SECONDS)).isTrue();
        for (int i = 0; i < 7; i++) {
            ledger.record(rows(8));
        }

        // Then recording never waited for the store, and once it answers, the seven batches go in one write
        assertThat(ledger.pending()).isEqualTo(64);
        store.gate.countDown();
        awaitCondition(() -> ledger.pending() == 0);
        assertThat(store.rows).hasSize(64);
        assertThat(store.calls).containsExactly(8, 56);
    }

    @Test
    void recoverableFailuresAreRetriedUntilTheRowsAreWritten() throws Exception {
        // Given a store that is away for its first five calls
        var store = SaboteurUsageRepository.awayFor(5);
        var ledger = start(store, 1000, 1000);
        var rows = rows(20);

        // When rows are recorded
        ledger.record(rows);

        // Then they are written once the store is back, each exactly once, after five failed writes
        awaitCondition(() -> ledger.pending() == 0);
        assertThat(store.rows).containsExactlyElementsOf(rows);
        assertThat(store.failures).hasValue(5);
        assertThat(events.failures).hasSize(5).allMatch(f -> f instanceof UsageWriteException.Recoverable);
        assertThat(events.written.get()).isEqualTo(20);
    }

    @Test
    void retriesBackOffExponentiallyUpToTheLongestWaitAndStartAgainAfterASuccess() throws Exception {
        // Given a store that is away for six calls, and back-off of 20 ms doubling up to 80 ms, on a ticker that notes waits
        var ticker = new ManualTicker();
        var store = SaboteurUsageRepository.awayFor(6);
        var ledger = track(new UsageLedger(store, 1000, 1000, Duration.ofMillis(20), Duration.ofMillis(80), ticker, events).start());

        // When a row is recorded
        ledger.record(rows(1));
        awaitCondition(() -> ledger.pending() == 0);

        // Then the waits between the seven attempts were exactly 20, 40, 80, 80, 80, 80 ms
        assertThat(ticker.sleeps).containsExactly(
                Duration.ofMillis(20), Duration.ofMillis(40), Duration.ofMillis(80),
                Duration.ofMillis(80), Duration.ofMillis(80), Duration.ofMillis(80));

        // When, after that success, the store is away for two more calls
        store.goAwayFor(2);
        ledger.record(rows(1));
        awaitCondition(() -> ledger.pending() == 0);

        // Then the back-off started again from the first wait
        assertThat(ticker.sleeps.subList(6, ticker.sleeps.size())).containsExactly(Duration.ofMillis(20), Duration.ofMillis(40));
    }

    @Test
    void anUnexpectedFailureOfTheStoreIsRetriedNotTakenForARefusal() throws Exception {
        // Given a store that throws something it does not declare, twice
        var throwsLeft = new AtomicInteger(2);
        var kept = new SpyUsageRepository();
        UsageRepository store = rows -> {
            if (throwsLeft.getAndDecrement() > 0) {
                throw new IllegalStateException("driver bug");
            }
            kept.record(rows);
        };
        var ledger = track(new UsageLedger(store, 1000, 1000, Duration.ofMillis(1), Duration.ofMillis(2), new ManualTicker(), events).start());
        var rows = rows(3);

        // When rows are recorded
        ledger.record(rows);
        awaitCondition(() -> ledger.pending() == 0);

        // Then they were kept and written in the end, none reported refused
        assertThat(kept.rows).containsExactlyElementsOf(rows);
        assertThat(events.rejected).isEmpty();
        assertThat(events.failures).hasSize(2).allMatch(f -> f instanceof UsageWriteException.Recoverable);
    }

    @Test
    void rowsTheStoreRefusesAreReportedAndDroppedAndTheOthersWritten() throws Exception {
        // Given a store that refuses rows of user 13
        var store = SaboteurUsageRepository.refusing(row -> row.userId() == 13);
        var ledger = start(store, 1000, 1000);
        var good = rows(100);
        var bad = List.of(row(13), row(13));
        var all = new ArrayList<>(good.subList(0, 40));
        all.add(bad.get(0));
        all.addAll(good.subList(40, 77));
        all.add(bad.get(1));
        all.addAll(good.subList(77, 100));

        // When they are recorded in one go
        ledger.record(all);

        // Then the refused rows are reported and dropped, and every other row is written exactly once
        awaitCondition(() -> ledger.pending() == 0);
        assertThat(events.rejected).containsExactlyInAnyOrderElementsOf(bad);
        assertThat(store.rows).containsExactlyInAnyOrderElementsOf(good);
        assertThat(Set.copyOf(store.rows)).hasSize(100);
    }

    @Test
    void aFullBufferSaturatesTheLedgerUntilItsRowsAreWritten() throws Exception {
        // Given a store that holds its writes until told to go on, and a ledger that holds ten rows
        var store = new HeldUsageRepository();
        var ledger = start(store, 10, 1000);

        // When nine rows are pending, the ledger still takes completions; at ten it is saturated
        ledger.record(rows(9));
        assertThat(store.entered.await(SLACK.toSeconds(), TimeUnit.SECONDS)).isTrue();
        assertThat(ledger.saturated()).isFalse();
        ledger.record(rows(1));
        assertThat(ledger.saturated()).isTrue();
        assertThat(ledger.pending()).isEqualTo(10);

        // When the store answers
        store.gate.countDown();

        // Then the rows are written and the ledger takes completions again by itself
        awaitCondition(() -> !ledger.saturated() && ledger.pending() == 0);
        assertThat(store.rows).hasSize(10);
    }

    @Test
    void aWaiterIsReleasedOnlyOnceItsRowsAreWrittenAndEveryWaiterOfAWriteTogether() throws Exception {
        // Given a store that holds its first write until told to go on
        var store = new HeldUsageRepository();
        var ledger = start(store, 1000, 1000);

        // When one batch's rows are recorded, and three more batches' while that write is held
        var first = ledger.record(rows(8));
        assertThat(store.entered.await(SLACK.toSeconds(), TimeUnit.SECONDS)).isTrue();
        var later = IntStream.range(0, 3).mapToObj(i -> ledger.record(rows(4))).toList();

        // Then nobody is released while the write is held
        assertThat(first).isNotDone();
        assertThat(later).allSatisfy(waiter -> assertThat(waiter).isNotDone());

        // When the store answers
        store.gate.countDown();

        // Then the first waiter is released, and the three later ones by one write of their twelve rows
        first.get(SLACK.toSeconds(), TimeUnit.SECONDS);
        for (var waiter : later) {
            waiter.get(SLACK.toSeconds(), TimeUnit.SECONDS);
        }
        assertThat(store.calls).containsExactly(8, 12);
    }

    @Test
    void aWaiterWhoseRowsSpanTwoWritesIsReleasedAfterTheSecond() throws Exception {
        // Given a store that holds its writes, and writes of at most four rows
        var store = new HeldUsageRepository();
        var ledger = start(store, 1000, 4);

        // When six rows are recorded in one call
        var waiter = ledger.record(rows(6));
        assertThat(store.entered.await(SLACK.toSeconds(), TimeUnit.SECONDS)).isTrue();

        // Then it is released only when the last of them is written, by the second write
        assertThat(waiter).isNotDone();
        store.gate.countDown();
        waiter.get(SLACK.toSeconds(), TimeUnit.SECONDS);
        assertThat(store.calls).containsExactly(4, 2);
    }

    @Test
    void whileTheStoreIsAwayRowsAreJournaledAndReplayedOnceItIsBack() throws Exception {
        // Given a store that is away until told otherwise, and a journal
        var store = SaboteurUsageRepository.awayForever();
        var journal = new MemoryUsageJournal();
        var ledger = track(new UsageLedger(store, journal, 1000, 1000, Duration.ofMillis(5), Duration.ofMillis(20),
                Ticker.system(), events).start());
        var rows = rows(30);

        // When rows are recorded
        var waiter = ledger.record(rows);

        // Then their waiter is released once they are journaled, with nothing in the store and nothing pending
        waiter.get(SLACK.toSeconds(), TimeUnit.SECONDS);
        assertThat(journal.appended).containsExactlyElementsOf(rows);
        assertThat(store.rows).isEmpty();
        assertThat(ledger.pending()).isZero();
        assertThat(ledger.saturated()).isFalse();

        // When the store comes back
        store.comeBack();

        // Then the journal is replayed to it, each row once, and later rows reach it too
        awaitCondition(() -> journal.isEmpty() && store.rows.size() == rows.size());
        assertThat(store.rows).containsExactlyElementsOf(rows);
        var after = rows(2);
        ledger.record(after).get(SLACK.toSeconds(), TimeUnit.SECONDS);
        awaitCondition(() -> store.rows.containsAll(after));
    }

    @Test
    void whatTheJournalHeldAtStartIsReplayed() throws Exception {
        // Given a journal left with rows by a process that died
        var journal = new MemoryUsageJournal();
        var left = rows(5);
        journal.append(left);
        var store = new SpyUsageRepository();

        // When a ledger starts with it
        start(store, journal);

        // Then the rows reach the store
        awaitCondition(journal::isEmpty);
        assertThat(store.rows).containsExactlyElementsOf(left);
    }

    @Test
    void whenNeitherStoreNorJournalTakeTheRowsTheWaiterIsTurnedAwayTheHeldBackRowsDroppedAndTheOthersKept() throws Exception {
        // Given a store that is away until told otherwise, and no journal
        var store = SaboteurUsageRepository.awayForever();
        var ledger = start(store, UsageJournal.NONE);
        var heldBack = rows(2);
        var callersGone = rows(3);

        // When the rows of two answers held back for them, and of three callers who had gone, are recorded
        var waiter = ledger.record(heldBack, callersGone);

        // Then their waiter fails with a 503's reason, and the ledger takes no more completions
        assertThat(waiter).failsWithin(SLACK).withThrowableThat().havingCause()
                .isInstanceOfSatisfying(CompletionRejectedException.class,
                        rejected -> assertThat(rejected.reason()).isEqualTo(CompletionRejectedException.Reason.USAGE_BACKLOG));
        assertThat(ledger.saturated()).isTrue();

        // When the store comes back
        store.comeBack();

        // Then the gone callers' rows are still written (the tokens were spent), the turned-away answers' are not,
        // and the ledger takes completions again
        awaitCondition(() -> !ledger.saturated() && ledger.pending() == 0 && store.rows.size() == 3);
        assertThat(store.rows).containsExactlyElementsOf(callersGone);
    }

    @Test
    void aLedgerThatRefusedEverythingTakesCompletionsAgainAfterItsBackOff() throws Exception {
        // Given a store that is away and no journal
        var ledger = start(SaboteurUsageRepository.awayForever(), UsageJournal.NONE);

        // When the rows of a held-back answer are refused
        assertThat(ledger.record(rows(1), List.of())).failsWithin(SLACK);

        // Then, with nothing left to retry, the ledger lets completions come again after its back-off to find out
        awaitCondition(() -> !ledger.saturated());
        assertThat(ledger.pending()).isZero();
    }

    @Test
    void closeFlushesWhatIsPending() throws Exception {
        // Given rows recorded while the store was away for a few calls
        var store = SaboteurUsageRepository.awayFor(3);
        var ledger = start(store, 1000, 1000);
        var rows = rows(50);
        ledger.record(rows);

        // When the ledger closes with time to spare
        List<UsageRecord> unwritten = ledger.close(SLACK);

        // Then every row is written and none is reported unwritten
        assertThat(unwritten).isEmpty();
        assertThat(events.unwritten).isEmpty();
        assertThat(store.rows).containsExactlyElementsOf(rows);
    }

    @Test
    void closeReturnsTheRowsItCouldNotWriteWhenTheStoreStaysAway() throws Exception {
        // Given a store that never comes back
        var store = SaboteurUsageRepository.awayForever();
        var ledger = start(store, 1000, 1000);
        var rows = rows(12);
        ledger.record(rows);
        awaitCondition(() -> store.failures.get() > 0);

        // When the ledger closes with a short grace period
        long started = System.nanoTime();
        List<UsageRecord> unwritten = ledger.close(Duration.ofMillis(200));

        // Then it gives up after the grace period, and returns and reports every row, in order
        assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(SLACK);
        assertThat(unwritten).containsExactlyElementsOf(rows);
        assertThat(events.unwritten).containsExactlyElementsOf(rows);
        assertThat(store.rows).isEmpty();
    }

    @Test
    void rowsRecordedAfterCloseAreNotSilentlyKept() throws Exception {
        // Given a closed ledger
        var store = new SpyUsageRepository();
        var ledger = start(store, 1000, 1000);
        assertThat(ledger.close(SLACK)).isEmpty();

        // When a late batch records its rows
        // Then they are not held as pending (no writer is left to write them) but reported unwritten
        var late = rows(3);
        ledger.record(late);
        assertThat(ledger.pending()).isZero();
        assertThat(store.rows).isEmpty();
        assertThat(events.unwritten).containsExactlyElementsOf(late);
    }

    @Test
    void anObserverThatFailsChangesNothing() throws Exception {
        // Given an observer that throws at every report
        var store = SaboteurUsageRepository.awayFor(2);
        UsageEvents broken = new UsageEvents() {
            @Override
            public void written(int rows, Duration latency) {
                throw new IllegalStateException("broken observer");
            }

            @Override
            public void writeFailed(UsageWriteException failure) {
                throw new IllegalStateException("broken observer");
            }
        };
        var ledger = track(new UsageLedger(store, 1000, 1000, Duration.ofMillis(5), Duration.ofMillis(50),
                Ticker.system(), broken).start());
        var rows = rows(10);

        // When rows are recorded
        ledger.record(rows);

        // Then they are written exactly once: the observer neither stops the writer nor makes it write them again
        awaitCondition(() -> ledger.pending() == 0);
        assertThat(store.rows).containsExactlyElementsOf(rows);
        assertThat(store.calls).containsExactly(10);
    }

    @Test
    void aLargeBacklogIsWrittenInBoundedWrites() throws Exception {
        // Given a store that holds its first write until 2,500 more rows are pending
        var store = new HeldUsageRepository();
        var ledger = start(store, 10_000, 1000);
        var all = new ArrayList<UsageRecord>(rows(5));
        ledger.record(all);
        assertThat(store.entered.await(SLACK.toSeconds(), TimeUnit.SECONDS)).isTrue();

        // When 2,500 rows arrive in batches of five meanwhile
        for (int i = 0; i < 2500 / 5; i++) {
            var batch = rows(5);
            all.addAll(batch);
            ledger.record(batch);
        }
        store.gate.countDown();

        // Then they are written in writes of a thousand at most (the bound is reached), all once, in order
        awaitCondition(() -> ledger.pending() == 0);
        assertThat(store.calls).containsExactly(5, 1000, 1000, 500);
        assertThat(store.rows).containsExactlyElementsOf(all);
    }

    // --- helpers

    private UsageLedger start(UsageRepository store, int capacity, int rowsPerWrite) {
        return track(new UsageLedger(store, capacity, rowsPerWrite, Duration.ofMillis(5), Duration.ofMillis(50),
                Ticker.system(), events).start());
    }

    private UsageLedger start(UsageRepository store, UsageJournal journal) {
        return track(new UsageLedger(store, journal, 1000, 1000, Duration.ofMillis(5), Duration.ofMillis(50),
                Ticker.system(), events).start());
    }

    private UsageLedger track(UsageLedger ledger) {
        started.add(ledger);
        return ledger;
    }

    private static List<UsageRecord> rows(int count) {
        return IntStream.range(0, count).mapToObj(i -> row(42)).collect(Collectors.toList());
    }

    private static UsageRecord row(long user) {
        return new UsageRecord(UUID.randomUUID(), user, new TokenUsage(3, 5), "m", Instant.now());
    }

    private static void awaitCondition(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + SLACK.toNanos();
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("condition met within " + SLACK).isLessThan(deadline);
            Thread.sleep(5);
        }
    }

    /** Keeps what the ledger reports. */
    private static final class RecordingEvents implements UsageEvents {
        final AtomicInteger written = new AtomicInteger();
        final List<UsageWriteException> failures = new CopyOnWriteArrayList<>();
        final List<UsageRecord> rejected = new CopyOnWriteArrayList<>();
        final List<UsageRecord> unwritten = new CopyOnWriteArrayList<>();

        @Override
        public void written(int rows, Duration latency) {
            written.addAndGet(rows);
        }

        @Override
        public void writeFailed(UsageWriteException failure) {
            failures.add(failure);
        }

        @Override
        public void rejected(List<UsageRecord> rows, UsageWriteException.Permanent refusal) {
            rejected.addAll(rows);
        }

        @Override
        public void unwritten(List<UsageRecord> rows) {
            unwritten.addAll(rows);
        }
    }
}
