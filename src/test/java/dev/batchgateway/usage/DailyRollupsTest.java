package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.UsageOutcome;
import dev.batchgateway.completion.UsageRecord;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * Days rolled up off the write path (V6), each test in a schema of its own on the real test PostgreSQL, its rollup
 * horizon moved back twelve days: every total equals the sums over its rows before, during and after a roll-up;
 * a day is rolled up once; rows of a day already rolled up are added to its rollup as they are written; and rows
 * written while days are being rolled up are counted exactly once.
 */
@Tag(TestDatabase.TAG)
class DailyRollupsTest {

    /** Twelve days ago, at midnight: rolling up from here to today takes a dozen days' statements, not a year's. */
    private static final LocalDate FIRST_DAY = LocalDate.now(ZoneOffset.UTC).minusDays(12);
    private static final Instant START = FIRST_DAY.atStartOfDay(ZoneOffset.UTC).toInstant();

    private final UsageSchema schema = new UsageSchema().migrate("latest");
    private final JdbcUsageRepository repository = new JdbcUsageRepository(new JdbcTemplate(schema.dataSource), Duration.ofSeconds(30));
    private final JdbcUsageTotals totals = new JdbcUsageTotals(schema.jdbc);
    private final DailyRollups rollups = new DailyRollups(schema.jdbc);

    @AfterEach
    void dropSchema() {
        schema.drop();
    }

    @Test
    void everyTotalStaysTheSumOfItsRowsAsDaysAreRolledUp() {
        // Given nothing rolled up from the first day on, and 3,000 rows of three users over six days (some on midnights)
        schema.horizon(date(0), date(0));
        var rows = rows(3000, 3, 6);
        repository.record(rows);
        var windows = windows();

        // When the first three days are closed and rolled up, then every day before today
        assertEveryTotal(rows, windows);
        assertThat(close(date(3))).isTrue();
        assertEveryTotal(rows, windows);
        assertThat(rollups.rollUpClosedDays())
                .containsExactly(FIRST_DAY, FIRST_DAY.plusDays(1), FIRST_DAY.plusDays(2));

        // Then the rollups hold those days, exactly, and every window's totals are still the sums over its rows
        assertThat(schema.rollups()).hasSize(splitsOfDays(rows, day(0), day(3))).isEqualTo(schema.sumsOfRowsRolledUp());
        assertEveryTotal(rows, windows);
        // And a day is rolled up once: nothing more until another day is closed
        assertThat(rollups.rollUpClosedDays()).isEmpty();
        assertThat(close(date(3))).isFalse();
        assertThat(rollups.daysBehind()).isEqualTo(ChronoUnit.DAYS.between(
                FIRST_DAY.plusDays(3), LocalDate.now(ZoneOffset.UTC)));
        List<LocalDate> days = rollups.rollUp();
        assertThat(days.getFirst()).isEqualTo(FIRST_DAY.plusDays(3));
        assertThat(days.getLast()).isEqualTo(LocalDate.now(ZoneOffset.UTC).minusDays(1));
        assertThat(schema.rollups()).isEqualTo(schema.sumsOfRowsRolledUp());
        assertEveryTotal(rows, windows);
        assertThat(rollups.rollUp()).isEmpty();
        assertThat(rollups.daysBehind()).isZero();
    }

    @Test
    void totalsOfWholeRolledUpDaysComeFromTheRollups() {
        // Given six days of rows, the first three rolled up
        schema.horizon(date(0), date(0));
        var rows = rows(600, 1, 6);
        repository.record(rows);
        close(date(3));
        rollups.rollUpClosedDays();
        long user = rows.getFirst().userId();
        long all = totals.totals(user, null, null).requests();

        // When the rollup of the second day is made to say 1,000 more requests than its rows (as no rollup ever should)
        schema.jdbc.sql("UPDATE usage_daily SET requests = requests + 1000 WHERE day = ?::date AND model = 'm0' AND outcome = 'served'"
                        + " AND service_tier = 'default'")
                .param(date(1)).update();

        // Then windows holding the whole day read its rollup, windows holding part of it or none of it read rows
        assertThat(totals.totals(user, null, null).requests()).isEqualTo(all + 1000);
        assertThat(totals.totals(user, day(1), day(2)).requests() + totals.totals(user, day(2), day(3)).requests())
                .isEqualTo(totals.totals(user, day(1), day(3)).requests())
                .isEqualTo(sum(rows, day(1), day(3)) + 1000);
        assertThat(totals.totals(user, day(1).minusSeconds(1), day(2).plusSeconds(1)).requests())
                .isEqualTo(sum(rows, day(1).minusSeconds(1), day(2).plusSeconds(1)) + 1000);
        assertThat(totals.totals(user, day(1).plusSeconds(1), day(2).plusSeconds(1)).requests())
                .isEqualTo(sum(rows, day(1).plusSeconds(1), day(2).plusSeconds(1)));
        assertThat(totals.totals(user, day(3), null).requests()).isEqualTo(sum(rows, day(3), null));
    }

    @Test
    void rowsOfADayAlreadyRolledUpAreAddedToItsRollupAsTheyAreWritten() {
        // Given six days of rows, the first three rolled up
        schema.horizon(date(0), date(0));
        var rows = new ArrayList<>(rows(900, 2, 6));
        repository.record(rows);
        close(date(3));
        rollups.rollUpClosedDays();

        // When more rows of those days arrive late (a write retried after an outage), with rows written before among them
        var late = rows(300, 2, 3);
        repository.record(late);
        repository.record(rows.subList(0, 100));
        rows.addAll(late);

        // Then the rollups still equal the rows' sums, and every total the sums over its rows
        assertThat(schema.rollups()).isEqualTo(schema.sumsOfRowsRolledUp());
        assertEveryTotal(rows, windows());
    }

    @Test
    void rowsWrittenWhileDaysAreRolledUpAreCountedExactlyOnce() throws InterruptedException {
        // Given nothing rolled up from the first day on, and two writers recording rows of the first eight days without
        // pause, 2,000 rows a write spread over the days
        schema.horizon(date(0), date(0));
        var written = new CopyOnWriteArrayList<UsageRecord>();
        var failures = new CopyOnWriteArrayList<Throwable>();
        var writing = new AtomicBoolean(true);
        var writers = IntStream.range(0, 2).mapToObj(n -> Thread.ofPlatform().start(() -> {
            while (writing.get()) {
                var rows = rows(2000, 5, 8);
                try {
                    repository.record(rows);
                    written.addAll(rows);
                } catch (RuntimeException failure) {
                    failures.add(failure);
                }
            }
        })).toList();

        // When the days are closed and rolled up one by one meanwhile, each right after it is closed (as DailyRollups
        // does), while writes that may have taken their rows of it as new are still in flight
        for (int day = 1; day <= 7; day++) {
            // two more writes first, whatever the machine's speed (at most a generous 30 s)
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (written.size() < day * 2 * 2000 && failures.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            close(date(day));
            rollups.rollUpClosedDays();
        }
        writing.set(false);
        for (Thread writer : writers) {
            writer.join();
        }

        // Then no write failed, every row is in its rollup exactly once, and every total is the sum over its rows
        assertThat(failures).isEmpty();
        assertThat(written).hasSizeGreaterThanOrEqualTo(7 * 2 * 2000);
        assertThat(schema.rollups()).isNotEmpty().isEqualTo(schema.sumsOfRowsRolledUp());
        assertThat(schema.jdbc.sql("SELECT sum(requests) FROM usage_daily").query(Long.class).single())
                .isEqualTo(schema.jdbc.sql("SELECT count(*) FROM token_usage WHERE created_at < ?").param(day(7).atOffset(ZoneOffset.UTC)).query(Long.class).single());
        assertEveryTotal(written, windows());
    }

    @Test
    void aDayIsClosedOnlyOnceTheWritesThatTookItsRowsAsNewHaveCommitted() throws Exception {
        // Given nothing rolled up from the first day on, and a write of ten rows of it not committed yet (its
        // statement found them new: not of a closed day)
        schema.horizon(date(0), date(0));
        try (var write = schema.dataSource.getConnection()) {
            write.setAutoCommit(false);
            insertTenRowsOf(date(0) + " 12:00:00+00", write);

            // When the first day is closed and rolled up meanwhile
            var rollUp = Thread.ofPlatform().start(() -> {
                close(date(1));
                rollups.rollUpClosedDays();
            });

            // Then the closing waits for the write, and once it commits, the day is rolled up with its rows
            awaitWaitingOrDone(rollUp);
            write.commit();
            rollUp.join();
        }
        assertThat(schema.rollups()).hasSize(1).isEqualTo(schema.sumsOfRowsRolledUp());
    }

    @Test
    void aDayIsRolledUpOnlyOnceTheLateWritesOfItHaveCommitted() throws Exception {
        // Given the first day closed but not rolled up yet, and a write of ten rows of it not committed yet (rows of a
        // closed day: the statement looked at the horizon and left them to the roll-up)
        schema.horizon(date(0), date(1));
        try (var write = schema.dataSource.getConnection()) {
            write.setAutoCommit(false);
            insertTenRowsOf(date(0) + " 12:00:00+00", write);

            // When the day is rolled up meanwhile
            var rollUp = Thread.ofPlatform().start(rollups::rollUpClosedDays);

            // Then the roll-up waits for the write, and once it commits, the day is rolled up with its rows
            awaitWaitingOrDone(rollUp);
            write.commit();
            rollUp.join();
        }
        assertThat(schema.rollups()).hasSize(1).isEqualTo(schema.sumsOfRowsRolledUp());
    }

    private static void insertTenRowsOf(String servedAt, java.sql.Connection connection) throws java.sql.SQLException {
        try (var insert = connection.prepareStatement("""
                INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at)
                SELECT gen_random_uuid(), 7, 2, 3, 5, 'm', ?::timestamptz FROM generate_series(1, 10)""")) {
            insert.setString(1, servedAt);
            insert.executeUpdate();
        }
    }

    /** Waits (up to a generous 10 s) until the thread is done or waits on a lock in the database. */
    private void awaitWaitingOrDone(Thread thread) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (thread.isAlive() && System.nanoTime() < deadline && schema.jdbc.sql("""
                        SELECT count(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%usage_rollup_%'""")
                .query(Long.class).single() == 0) {
            Thread.sleep(5);
        }
    }

    private boolean close(String day) {
        return schema.jdbc.sql("SELECT usage_rollup_close(?::date)").param(day).query(Boolean.class).single();
    }

    /** The n-th day from the first, as SQL reads a date. */
    private static String date(int n) {
        return FIRST_DAY.plusDays(n).toString();
    }

    private static Instant day(int n) {
        return START.plus(n, ChronoUnit.DAYS);
    }

    /** n rows of the given number of users over the first days from the first, two models, every outcome, some on midnights. */
    private static List<UsageRecord> rows(int n, int users, int days) {
        var random = ThreadLocalRandom.current();
        var outcomes = UsageOutcome.values();
        return IntStream.range(0, n).mapToObj(i -> new UsageRecord(UUID.randomUUID(), 1 + i % users,
                        new TokenUsage(random.nextInt(0, 100), random.nextInt(0, 100)), "m" + i / users % 2,
                        i % 50 == 0 ? day(random.nextInt(0, days))
                                : START.plus(random.nextLong(0, days * 86_400_000_000L), ChronoUnit.MICROS),
                        outcomes[i / users / 2 % outcomes.length], ServiceTier.values()[i / users / 2 / outcomes.length % 2]))
                .toList();
    }

    /** Open windows, windows on midnights, inside a day, across midnights, a microsecond wide, and random ones. */
    private static List<Instant[]> windows() {
        var random = ThreadLocalRandom.current();
        var windows = new ArrayList<Instant[]>(List.of(
                new Instant[] {null, null},
                new Instant[] {day(2), null},
                new Instant[] {null, day(2)},
                new Instant[] {day(1), day(5)},
                new Instant[] {day(2).plusSeconds(3600), day(2).plusSeconds(7200)},
                new Instant[] {day(3).minusNanos(1), day(3).plusNanos(1)},
                new Instant[] {day(4), day(4).plus(1, ChronoUnit.MICROS)}));
        for (int i = 0; i < 30; i++) {
            Instant a = day(-1).plusNanos(random.nextLong(0, 10 * 86_400_000_000_000L));
            Instant b = day(-1).plusNanos(random.nextLong(0, 10 * 86_400_000_000_000L));
            windows.add(a.isBefore(b) ? new Instant[] {a, b} : new Instant[] {b, a});
        }
        return windows;
    }

    private void assertEveryTotal(List<UsageRecord> rows, List<Instant[]> windows) {
        for (long user : rows.stream().map(UsageRecord::userId).distinct().toList()) {
            for (Instant[] window : windows) {
                assertThat(totals.totals(user, window[0], window[1]))
                        .as("user %d from %s to %s", user, window[0], window[1])
                        .isEqualTo(sumOfRows(rows, user, window[0], window[1]));
            }
        }
    }

    /** How many rollup rows the rows of these days make: one per day, user, model, outcome and tier they hold. */
    private static int splitsOfDays(List<UsageRecord> rows, Instant from, Instant to) {
        return (int) rows.stream()
                .filter(row -> !row.servedAt().isBefore(from) && row.servedAt().isBefore(to))
                .map(row -> List.of(row.servedAt().truncatedTo(ChronoUnit.DAYS), row.userId(), row.model(), row.outcome(),
                        row.serviceTier()))
                .distinct()
                .count();
    }

    private static long sum(List<UsageRecord> rows, Instant from, Instant to) {
        return sumOfRows(rows, rows.getFirst().userId(), from, to).requests();
    }

    /** The reference, computed from the rows as recorded, with exact instants: independent of any SQL. */
    private static UsageTotals sumOfRows(List<UsageRecord> rows, long user, Instant from, Instant to) {
        var sums = new HashMap<UsageTotals.Split, UsageTotals.Sum>();
        for (UsageRecord row : rows) {
            if (row.userId() == user
                    && (from == null || !row.servedAt().isBefore(from)) && (to == null || row.servedAt().isBefore(to))) {
                var usage = row.usage();
                sums.merge(new UsageTotals.Split(row.outcome().word(), row.serviceTier().wireName()),
                        new UsageTotals.Sum(1, usage.promptTokens(), usage.completionTokens(), usage.totalTokens()),
                        UsageTotals.Sum::plus);
            }
        }
        return UsageTotals.of(user, sums);
    }
}
