package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The ledger's bounds, its reports, and how it backs off while it isolates rows the store refuses. */
class UsageLedgerLimitsTest {

    private static final Duration SLACK = Duration.ofSeconds(10);

    private final ManualTicker ticker = new ManualTicker();
    private final List<UsageLedger> started = new ArrayList<>();

    @AfterEach
    void closeLedgers() throws InterruptedException {
        for (UsageLedger ledger : started) {
            ledger.close(Duration.ZERO);
        }
    }

    @Test
    void capacityAndRowsPerWriteMustBeAtLeastOne() {
        assertThatThrownBy(() -> ledger(new SpyUsageRepository(), 0, 1, Duration.ofMillis(1), Duration.ofMillis(1)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ledger(new SpyUsageRepository(), 1, 0, Duration.ofMillis(1), Duration.ofMillis(1)))
                .isInstanceOf(IllegalArgumentException.class);

        // the smallest allowed: one row each
        var smallest = ledger(new SpyUsageRepository(), 1, 1, Duration.ofMillis(1), Duration.ofMillis(1));
        assertThat(smallest.capacity()).isEqualTo(1);
    }

    @Test
    void backOffMustBePositiveAndItsLongestWaitNoShorterThanItsFirst() {
        assertThatThrownBy(() -> ledger(new SpyUsageRepository(), 10, 10, Duration.ZERO, Duration.ofMillis(1)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ledger(new SpyUsageRepository(), 10, 10, Duration.ofMillis(2), Duration.ofMillis(1)))
                .isInstanceOf(IllegalArgumentException.class);

        // a longest wait equal to the first is a constant back-off
        assertThatCode(() -> ledger(new SpyUsageRepository(), 10, 10, Duration.ofMillis(2), Duration.ofMillis(2)))
                .doesNotThrowAnyException();
    }

    @Test
    void aLedgerReportsTheCapacityItWasGiven() {
        assertThat(ledger(new SpyUsageRepository(), 250, 10, Duration.ofMillis(1), Duration.ofMillis(1)).capacity()).isEqualTo(250);
    }

    @Test
    void eachWriteIsReportedWithItsRowsAndHowLongTheStoreTook() throws Exception {
        // Given a store that takes 3 ms of the test's time per write
        var kept = new SpyUsageRepository();
        UsageRepository store = rows -> {
            ticker.advance(Duration.ofMillis(3));
            kept.record(rows);
        };
        List<String> written = new CopyOnWriteArrayList<>();
        var ledger = track(new UsageLedger(store, 100, 100, Duration.ofMillis(5), Duration.ofMillis(50), ticker,
                new UsageEvents() {
                    @Override
                    public void written(int rows, Duration latency) {
                        written.add(rows + " rows in " + latency.toMillis() + " ms");
                    }
                }).start());

        // When four rows are recorded
        ledger.record(rows(4));

        // Then one write of four rows is reported, taking 3 ms
        awaitCondition(() -> written.size() == 1);
        assertThat(written).containsExactly("4 rows in 3 ms");
    }

    @Test
    void aStoreThatGoesAwayWhileRefusedRowsAreIsolatedIsBackedOffFromThenRetried() throws Exception {
        // Given a store that refuses one row, and goes away once, on the first write of the isolation
        var good = row();
        var bad = row();
        var kept = new SpyUsageRepository();
        var calls = new AtomicInteger();
        List<List<UsageRecord>> attempts = new CopyOnWriteArrayList<>();
        UsageRepository store = rows -> {
            attempts.add(List.copyOf(rows));
            if (calls.incrementAndGet() == 2) {
                throw new UsageWriteException.Recoverable("connection refused", null);
            }
            if (rows.contains(bad)) {
                throw new UsageWriteException.Permanent("violates check constraint", null);
            }
            kept.record(rows);
        };
        List<UsageRecord> rejected = new CopyOnWriteArrayList<>();
        var ledger = track(new UsageLedger(store, 100, 100, Duration.ofMillis(5), Duration.ofMillis(50), ticker,
                new UsageEvents() {
                    @Override
                    public void rejected(List<UsageRecord> rows, UsageWriteException.Permanent refusal) {
                        rejected.addAll(rows);
                    }
                }).start());

        // When the two rows are recorded
        ledger.record(List.of(good, bad));

        // Then: refused together; the good half meets the outage; one back-off; refused together again; the good half
        // written, the bad one refused alone
        awaitCondition(() -> ledger.pending() == 0);
        assertThat(attempts).containsExactly(
                List.of(good, bad), List.of(good), List.of(good, bad), List.of(good), List.of(bad));
        assertThat(ticker.sleeps).containsExactly(Duration.ofMillis(5));
        assertThat(kept.rows).containsExactly(good);
        assertThat(rejected).containsExactly(bad);
    }

    @Test
    void aStoreThatKeepsRefusingARowOnlyDropsThatRowAndNeverWaits() throws Exception {
        // Given a store that refuses the middle one of three rows
        var rows = rows(3);
        var bad = rows.get(1);
        var store = SaboteurUsageRepository.refusing(bad::equals);
        var ledger = track(new UsageLedger(store, 100, 100, Duration.ofMillis(5), Duration.ofMillis(50), ticker, UsageEvents.NONE)
                .start());

        // When they are recorded
        ledger.record(rows);

        // Then the other two are written in order and the ledger never backed off: a refusal is not an outage
        awaitCondition(() -> ledger.pending() == 0);
        assertThat(store.rows).containsExactly(rows.get(0), rows.get(2));
        assertThat(ticker.sleeps).isEmpty();
    }

    @Test
    void aClosedLedgerTakesLateRowsFromAnyThreadWithoutBlocking() throws Exception {
        // Given a closed ledger
        List<UsageRecord> unwritten = new CopyOnWriteArrayList<>();
        var ledger = new UsageLedger(new SpyUsageRepository(), 100, 100, Duration.ofMillis(5), Duration.ofMillis(50), ticker,
                new UsageEvents() {
                    @Override
                    public void unwritten(List<UsageRecord> rows) {
                        unwritten.addAll(rows);
                    }
                }).start();
        assertThat(ledger.close(SLACK)).isEmpty();

        // When a late batch on another thread records its rows
        var late = rows(2);
        CompletableFuture.runAsync(() -> ledger.record(late)).get(SLACK.toSeconds(), TimeUnit.SECONDS);

        // Then they are reported unwritten
        assertThat(unwritten).containsExactlyElementsOf(late);
    }

    // --- helpers

    private UsageLedger ledger(UsageRepository store, int capacity, int rowsPerWrite, Duration first, Duration max) {
        return new UsageLedger(store, capacity, rowsPerWrite, first, max, ticker, UsageEvents.NONE);
    }

    private UsageLedger track(UsageLedger ledger) {
        started.add(ledger);
        return ledger;
    }

    private static List<UsageRecord> rows(int count) {
        var rows = new ArrayList<UsageRecord>();
        for (int i = 0; i < count; i++) {
            rows.add(row());
        }
        return rows;
    }

    private static UsageRecord row() {
        return new UsageRecord(UUID.randomUUID(), 42, new TokenUsage(3, 5), "m", Instant.now());
    }

    private static void awaitCondition(java.util.function.BooleanSupplier condition) throws InterruptedException {
        SchedulerTest.awaitCondition(condition);
    }
}
