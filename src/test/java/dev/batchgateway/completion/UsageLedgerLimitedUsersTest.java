package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Rows of users with token limits (rows with budget charges) are durable only in the store, charged to live holds:
 * never journaled. What cannot be so written is unbilled, or in doubt when its write's answer was lost, and its answer
 * must not leave; users without limits are journaled as before.
 */
class UsageLedgerLimitedUsersTest {

    private static final long SLACK_SECONDS = 10;
    private static final UUID HOLDER = UUID.randomUUID();

    private final ManualTicker ticker = new ManualTicker();
    private final MemoryUsageJournal journal = new MemoryUsageJournal();
    private final List<Report> reports = new CopyOnWriteArrayList<>();
    private UsageLedger ledger;

    private record Report(Set<UUID> rows, boolean inDoubt, boolean firstOfOutage) {}

    @AfterEach
    void close() throws InterruptedException {
        if (ledger != null) {
            ledger.close(Duration.ZERO);
        }
    }

    @Test
    void whileTheStoreIsAwayALimitedUsersRowIsNotJournaledAndItsAnswerIsTurnedAwayUnbilled() throws Exception {
        // Given a store that is away
        var store = SaboteurUsageRepository.awayForever();
        start(store);

        // When an answer of a limited user and one of a user without limits wait for their rows
        var limited = limited();
        var unlimited = unlimited();
        var recorded = ledger.recordAnswers(List.of(limited, unlimited), List.of()).get(SLACK_SECONDS, TimeUnit.SECONDS);

        // Then the limited one is unbilled (not written anywhere, its answer withheld), the other journaled and served
        assertThat(recorded.rejection()).isNull();
        assertThat(recorded.unbilled()).containsExactly(limited.requestId());
        assertThat(recorded.inDoubt()).isEmpty();
        assertThat(recorded.unanswered(limited.requestId())).isTrue();
        assertThat(recorded.unanswered(unlimited.requestId())).isFalse();
        assertThat(journal.appended).containsExactly(unlimited);
        assertThat(store.rows).isEmpty();

        // and it is reported once as the first of the outage; a later one while still away is not the first
        var later = limited();
        assertThat(ledger.recordAnswers(List.of(later), List.of()).get(SLACK_SECONDS, TimeUnit.SECONDS).unbilled())
                .containsExactly(later.requestId());
        // (reported by the writer just after it settles the rows: awaited, not read at once)
        await().atMost(Duration.ofSeconds(SLACK_SECONDS)).untilAsserted(() -> assertThat(reports).containsExactly(
                new Report(Set.of(limited.requestId()), false, true), new Report(Set.of(later.requestId()), false, false)));
        assertThat(journal.appended).doesNotContain(later);
    }

    @Test
    void aLimitedUsersRowWhoseWriteMayHaveCommittedIsInDoubt() throws Exception {
        // Given a store whose first write times out (it may commit there all the same)
        var timedOut = new AtomicInteger();
        var store = new SpyUsageRepository() {
            @Override
            public void record(List<UsageRecord> rows) {
                if (timedOut.getAndIncrement() == 0) {
                    throw new UsageWriteException.Recoverable("timeout", null, true);
                }
                super.record(rows);
            }
        };
        start(store);

        // When an answer of a limited user and one of a user without limits wait for that write
        var limited = limited();
        var unlimited = unlimited();
        var recorded = ledger.recordAnswers(List.of(limited, unlimited), List.of()).get(SLACK_SECONDS, TimeUnit.SECONDS);

        // Then the limited one is in doubt: withheld, but not unbilled (its charges may be in the store)
        assertThat(recorded.inDoubt()).containsExactly(limited.requestId());
        assertThat(recorded.unbilled()).isEmpty();
        assertThat(recorded.unanswered(limited.requestId())).isTrue();
        assertThat(journal.appended).containsExactly(unlimited);
        await().atMost(Duration.ofSeconds(SLACK_SECONDS)).untilAsserted(() ->
                assertThat(reports).containsExactly(new Report(Set.of(limited.requestId()), true, true)));
    }

    @Test
    void aRowTheStoreRefusesForAHoldThatIsNoLongerLiveIsUnbilledAndTheOthersOfItsWriteAreWritten() throws Exception {
        // Given a store that refuses the rows charging one hold (expired there)
        UUID expired = UUID.randomUUID();
        var store = new SpyUsageRepository() {
            @Override
            public Set<UUID> recordOnLiveHolds(List<UsageRecord> rows) {
                Set<UUID> refused = new HashSet<>();
                rows.stream().filter(row -> row.charges().stream().anyMatch(charge -> charge.holder().equals(expired)))
                        .forEach(row -> refused.add(row.requestId()));
                record(rows.stream().filter(row -> !refused.contains(row.requestId())).toList());
                return refused;
            }
        };
        start(store);

        // When three rows are written together, one of them charging that hold
        var onExpired = limited(expired);
        var onLive = limited();
        var unlimited = unlimited();
        var recorded = ledger.recordAnswers(List.of(onExpired, onLive), List.of(unlimited)).get(SLACK_SECONDS, TimeUnit.SECONDS);

        // Then only that one is unbilled; the others are in the store, and nothing is journaled
        assertThat(recorded.unbilled()).containsExactly(onExpired.requestId());
        assertThat(store.rows).containsExactlyInAnyOrder(onLive, unlimited);
        assertThat(journal.appended).isEmpty();
    }

    @Test
    void limitedUsersAreServedAgainOnceTheStoreAnswersThoughNothingWasJournaled() throws Exception {
        // Given a store away for one write, and only limited users' rows, so that no replay would find it back
        var store = SaboteurUsageRepository.awayFor(1);
        start(store);
        var first = limited();
        assertThat(ledger.recordAnswers(List.of(first), List.of()).get(SLACK_SECONDS, TimeUnit.SECONDS).unbilled())
                .containsExactly(first.requestId());

        // When another comes within the back-off (100 ms on the ledger's clock, which stands still)
        var within = limited();
        var refused = ledger.recordAnswers(List.of(within), List.of()).get(SLACK_SECONDS, TimeUnit.SECONDS);

        // Then it is turned away without trying the store again
        assertThat(refused.unbilled()).containsExactly(within.requestId());
        assertThat(store.failures.get()).isEqualTo(1);

        // When one comes after the back-off
        ticker.advance(Duration.ofMillis(150));
        var after = limited();
        var written = ledger.recordAnswers(List.of(after), List.of()).get(SLACK_SECONDS, TimeUnit.SECONDS);

        // Then it tries the store, which is back: written, and its answer may leave
        assertThat(written.unbilled()).isEmpty();
        assertThat(written.unanswered(after.requestId())).isFalse();
        assertThat(store.rows).containsExactly(after);
    }

    private void start(UsageRepository store) {
        var events = new UsageEvents() {
            @Override
            public void unaccounted(List<UsageRecord> rows, boolean inDoubt, boolean firstOfOutage) {
                Set<UUID> ids = new HashSet<>();
                rows.forEach(row -> ids.add(row.requestId()));
                reports.add(new Report(ids, inDoubt, firstOfOutage));
            }
        };
        ledger = new UsageLedger(store, journal, 1000, 1000, Duration.ofMillis(100), Duration.ofSeconds(5), ticker, events)
                .start();
    }

    private static UsageRecord limited() {
        return limited(HOLDER);
    }

    private static UsageRecord limited(UUID holder) {
        Instant now = Instant.now();
        return new UsageRecord(UUID.randomUUID(), 7, new TokenUsage(3, 4), "m", now)
                .charging(List.of(new BudgetCharge(7, holder, 0, "day", now.truncatedTo(java.time.temporal.ChronoUnit.DAYS), 7)));
    }

    private static UsageRecord unlimited() {
        return new UsageRecord(UUID.randomUUID(), 8, new TokenUsage(3, 4), "m", Instant.now());
    }
}
