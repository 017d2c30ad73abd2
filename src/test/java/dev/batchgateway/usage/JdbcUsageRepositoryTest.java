package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.completion.BudgetCharge;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageWriteException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.jdbc.test.autoconfigure.AutoConfigureTestDatabase;
import org.springframework.boot.jdbc.test.autoconfigure.JdbcTest;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Propagation;
import org.springframework.transaction.annotation.Transactional;

@Tag(TestDatabase.TAG)
@JdbcTest
@AutoConfigureTestDatabase(replace = AutoConfigureTestDatabase.Replace.NONE)
@Transactional(propagation = Propagation.NOT_SUPPORTED)
class JdbcUsageRepositoryTest {

    /** Writes here wait at most this long for PostgreSQL's answer. */
    @TestConfiguration
    static class Repository {
        @Bean
        JdbcUsageRepository jdbcUsageRepository(JdbcTemplate template) {
            return new JdbcUsageRepository(template, Duration.ofSeconds(1));
        }
    }


    @DynamicPropertySource
    static void database(DynamicPropertyRegistry registry) {
        TestDatabase.register(registry);
    }

    @Autowired
    JdbcUsageRepository repository;

    @Autowired
    JdbcClient jdbc;

    @Autowired
    JdbcTemplate template;

    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);

    @Test
    void aBatchOfRowsIsStoredAsGiven() {
        // Given the usage of three completions
        Instant servedAt = Instant.now().truncatedTo(ChronoUnit.MICROS);
        var rows = IntStream.range(0, 3)
                .mapToObj(i -> new UsageRecord(UUID.randomUUID(), user, new TokenUsage(i + 1, 10 * i), "m", servedAt))
                .toList();

        // When they are recorded
        repository.record(rows);

        // Then each is a row with its counts, total, model and time
        for (var row : rows) {
            var stored = jdbc.sql("""
                            SELECT user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at
                            FROM token_usage WHERE request_id = ?""")
                    .param(row.requestId())
                    .query((rs, n) -> List.of(rs.getLong(1), rs.getInt(2), rs.getInt(3), rs.getInt(4), rs.getString(5),
                            rs.getTimestamp(6).toInstant()))
                    .single();
            assertThat(stored).containsExactly(user, row.usage().promptTokens(), row.usage().completionTokens(),
                    row.usage().totalTokens(), "m", servedAt);
        }
    }

    @Test
    void aRowIsChargedToItsBudgetInItsOwnCommitAndOnlyOnce() {
        // Given an instance holding 1,000 tokens of the user's day (its hold started by operation 4)
        UUID instance = UUID.randomUUID();
        Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS);
        hold(instance, day, 1_000, 4, "1 minute");
        var row = new UsageRecord(UUID.randomUUID(), user, new TokenUsage(30, 70), "m", Instant.now())
                .charging(List.of(new BudgetCharge(user, instance, 4, "day", day, 100)));

        // When its usage row is written, then written again (a journal's replay)
        repository.record(List.of(row));
        repository.record(List.of(row));

        // Then the 100 tokens count as billed once, and left the hold they were reserved from
        assertThat(consumed(day)).isEqualTo(100);
        assertThat(held(instance, day)).isEqualTo(900);
    }

    @Test
    void aChargeNeverLowersAHoldThatExpiredOrStartedAgain() {
        // Given an instance whose hold expired, and one whose hold was lost and started again by operation 9
        UUID expired = UUID.randomUUID();
        UUID restarted = UUID.randomUUID();
        Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS);
        hold(expired, day, 500, 0, "-1 second");
        hold(restarted, day, 300, 9, "1 minute");

        // When rows reserved from their old holds are written
        repository.record(List.of(
                new UsageRecord(UUID.randomUUID(), user, new TokenUsage(10, 10), "m", Instant.now())
                        .charging(List.of(new BudgetCharge(user, expired, 0, "day", day, 20))),
                new UsageRecord(UUID.randomUUID(), user, new TokenUsage(20, 20), "m", Instant.now())
                        .charging(List.of(new BudgetCharge(user, restarted, 3, "day", day, 40)))));

        // Then what they billed counts, and neither hold gives up anything: an expired one is free for all already,
        // and the new one holds other requests' budget
        assertThat(consumed(day)).isEqualTo(60);
        assertThat(held(expired, day)).isEqualTo(500);
        assertThat(held(restarted, day)).isEqualTo(300);
    }

    @Test
    void anAnswerWaitingForItsRowIsWrittenOnlyAgainstALiveHold() {
        // Given a live hold, one that expired, and one that was lost and started again by operation 9
        UUID live = UUID.randomUUID();
        UUID expired = UUID.randomUUID();
        UUID restarted = UUID.randomUUID();
        Instant day = Instant.now().truncatedTo(ChronoUnit.DAYS);
        hold(live, day, 1_000, 4, "1 minute");
        hold(expired, day, 500, 0, "-1 second");
        hold(restarted, day, 300, 9, "1 minute");
        var onLive = new UsageRecord(UUID.randomUUID(), user, new TokenUsage(30, 70), "m", Instant.now())
                .charging(List.of(new BudgetCharge(user, live, 4, "day", day, 100)));
        var onExpired = new UsageRecord(UUID.randomUUID(), user, new TokenUsage(10, 10), "m", Instant.now())
                .charging(List.of(new BudgetCharge(user, expired, 0, "day", day, 20)));
        var onOldHold = new UsageRecord(UUID.randomUUID(), user, new TokenUsage(20, 20), "m", Instant.now())
                .charging(List.of(new BudgetCharge(user, restarted, 3, "day", day, 40)));
        var unlimited = new UsageRecord(UUID.randomUUID(), user + 1, new TokenUsage(5, 5), "m", Instant.now());

        // When they are written for answers that wait for them, in one statement, and again
        Set<UUID> refused = repository.recordOnLiveHolds(List.of(onLive, onExpired, onOldHold, unlimited));
        repository.recordOnLiveHolds(List.of(onLive));

        // Then the rows on holds that are not live any more are refused, neither written nor billed
        assertThat(refused).containsExactlyInAnyOrder(onExpired.requestId(), onOldHold.requestId());
        assertThat(rowsOf(List.of(onLive, onExpired, onOldHold, unlimited)))
                .containsExactlyInAnyOrder(onLive.requestId(), unlimited.requestId());
        // and the one on a live hold is billed once, out of that hold; the other holds are untouched
        assertThat(consumed(day)).isEqualTo(100);
        assertThat(held(live, day)).isEqualTo(900);
        assertThat(held(expired, day)).isEqualTo(500);
        assertThat(held(restarted, day)).isEqualTo(300);
    }

    private List<UUID> rowsOf(List<UsageRecord> rows) {
        return jdbc.sql("SELECT request_id FROM token_usage WHERE request_id = ANY (?::uuid[])")
                .param(rows.stream().map(row -> row.requestId().toString()).toArray(String[]::new))
                .query(UUID.class).list();
    }

    private void hold(UUID instance, Instant day, long held, long sinceOp, String expiresIn) {
        jdbc.sql("INSERT INTO budget_window (user_id, kind, window_start) VALUES (?, 'day', ?) ON CONFLICT DO NOTHING")
                .params(user, day.atOffset(ZoneOffset.UTC)).update();
        jdbc.sql("""
                        INSERT INTO budget_hold (user_id, kind, window_start, instance_id, held, expires_at, since_op)
                        VALUES (?, 'day', ?, ?, ?, clock_timestamp() + ?::interval, ?)""")
                .params(user, day.atOffset(ZoneOffset.UTC), instance, held, expiresIn, sinceOp).update();
    }

    private long consumed(Instant day) {
        return jdbc.sql("SELECT consumed FROM budget_window WHERE user_id = ? AND kind = 'day' AND window_start = ?")
                .params(user, day.atOffset(ZoneOffset.UTC)).query(Long.class).single();
    }

    private long held(UUID instance, Instant day) {
        return jdbc.sql("SELECT held FROM budget_hold WHERE user_id = ? AND kind = 'day' AND window_start = ? AND instance_id = ?")
                .params(user, day.atOffset(ZoneOffset.UTC), instance).query(Long.class).single();
    }

    @Test
    void recordingTheSameRowsAgainNeverCountsThemTwice() {
        // Given rows of a day already rolled up that were recorded (rows the trigger adds to usage_daily as it inserts them)
        var rows = List.of(lateRow(5, 7), lateRow(1, 2));
        repository.record(rows);

        // When the same rows are recorded again with one new row (a retried write)
        repository.record(List.of(rows.get(0), rows.get(1), lateRow(3, 3)));

        // Then each request is counted once, in the rows and in the daily rollups
        assertThat(count()).isEqualTo(3);
        assertThat(jdbc.sql("SELECT sum(total_tokens) FROM token_usage WHERE user_id = ?").param(user)
                .query(Long.class).single()).isEqualTo(12 + 3 + 6);
        assertThat(jdbc.sql("SELECT sum(requests), sum(prompt_tokens + completion_tokens) FROM usage_daily WHERE user_id = ?")
                .param(user).query((rs, n) -> List.of(rs.getLong(1), rs.getLong(2))).single()).containsExactly(3L, 21L);
    }

    @Test
    void aThousandRowsGoInOneCall() {
        // When a thousand rows are recorded at once
        repository.record(IntStream.range(0, 1000).mapToObj(i -> row(i, 1)).toList());

        // Then all are there
        assertThat(count()).isEqualTo(1000);
    }

    @Test
    void twentyThousandRowsFitOneStatement() {
        // When more rows are recorded at once than PostgreSQL takes bind parameters (65,535) at seven a row (with a
        // write timeout of its own: this class's 1 s is for its timeout test, and a loaded machine took longer)
        new JdbcUsageRepository(template, Duration.ofSeconds(60))
                .record(IntStream.range(0, 20_000).mapToObj(i -> row(1, 1)).toList());

        // Then all are there: the rows travel as seven arrays, not as 140,000 parameters
        assertThat(count()).isEqualTo(20_000);
    }

    @Test
    void aRowTwiceInOneCallIsCountedOnce() {
        // Given a call that carries the same row twice (a retried batch meeting its first attempt), of a day already
        // rolled up
        var twice = lateRow(4, 4);

        // When it is recorded
        repository.record(List.of(twice, lateRow(1, 1), twice));

        // Then the request is counted once, in the rows and in the daily rollups
        assertThat(count()).isEqualTo(2);
        assertThat(jdbc.sql("SELECT sum(requests) FROM usage_daily WHERE user_id = ?").param(user).query(Long.class).single())
                .isEqualTo(2);
    }

    @Test
    void rowsTheDatabaseRefusesArePermanentFailures() {
        // Given a row the table's constraints refuse (user ids start at 1)
        var refused = new UsageRecord(UUID.randomUUID(), 0, new TokenUsage(1, 1), "m", Instant.now());

        // When it is recorded, then the failure is permanent, and nothing of the call is stored
        assertThatThrownBy(() -> repository.record(List.of(row(1, 1), refused)))
                .isInstanceOf(UsageWriteException.Permanent.class)
                .hasMessageContaining("violates check constraint");
        assertThat(count()).isZero();
        assertThat(jdbc.sql("SELECT count(*) FROM usage_daily WHERE user_id = ?").param(user).query(Long.class).single()).isZero();
    }

    @Test
    void theDailyRollupsEqualTheRowsSumsAcrossDaysModelsOutcomesAndTiersWhateverIsRetried() {
        // Given rows of one user over ten days, three models, every outcome, both tiers, around midnights
        var random = ThreadLocalRandom.current();
        Instant midnight = Instant.parse("2026-10-01T00:00:00Z");
        var outcomes = dev.batchgateway.completion.UsageOutcome.values();
        var rows = IntStream.range(0, 3000).mapToObj(i -> new UsageRecord(UUID.randomUUID(), user,
                        new TokenUsage(random.nextInt(0, 300), random.nextInt(0, 300)), "m" + i % 3,
                        midnight.plus(random.nextLong(-3_600_000_000L, 10 * 86_400_000_000L), ChronoUnit.MICROS),
                        outcomes[i % outcomes.length], dev.batchgateway.completion.ServiceTier.values()[i / 7 % 2]))
                .toList();

        // When they are recorded in calls of various sizes, some calls twice, some overlapping the previous one
        int at = 0;
        while (at < rows.size()) {
            int end = Math.min(rows.size(), at + random.nextInt(1, 400));
            repository.record(rows.subList(Math.max(0, at - random.nextInt(0, 50)), end));
            if (random.nextInt(4) == 0) {
                repository.record(rows.subList(at, end));
            }
            at = end;
        }

        // Then every row is there once, with its tier, and the rollups are exactly the rows' sums per day, model, outcome
        // and tier
        assertThat(count()).isEqualTo(3000);
        assertThat(jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id = ? AND service_tier = 'flex'").param(user)
                .query(Long.class).single()).isEqualTo(rows.stream()
                        .filter(row -> row.serviceTier() == dev.batchgateway.completion.ServiceTier.FLEX).count());
        var rollups = jdbc.sql("""
                        SELECT day, model, outcome, service_tier, requests, prompt_tokens, completion_tokens FROM usage_daily
                        WHERE user_id = ? ORDER BY 1, 2, 3, 4""")
                .param(user).query().listOfRows();
        var sums = jdbc.sql("""
                        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, coalesce(model, '') AS model, outcome, service_tier,
                               count(*) AS requests, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens
                        FROM token_usage WHERE user_id = ? GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""")
                .param(user).query().listOfRows();
        assertThat(rollups).isNotEmpty().isEqualTo(sums);
    }

    @Test
    void aWriteThatPostgresDoesNotAnswerGivesUpAfterTheWriteTimeoutAndCanBeRepeated() throws Exception {
        // Given a row whose insert must wait: another transaction inserted the same request id and has not ended
        // (to the microsecond, as PostgreSQL keeps it: the conflict is on request id and time)
        UsageRecord row = new UsageRecord(UUID.randomUUID(), user, new TokenUsage(1, 2), "m",
                Instant.now().truncatedTo(ChronoUnit.MICROS));
        var coordinates = TestDatabase.get();
        try (Connection blocker = DriverManager.getConnection(coordinates.url(), coordinates.username(), coordinates.password())) {
            blocker.setAutoCommit(false);
            try (var insert = blocker.prepareStatement("""
                    INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at)
                    VALUES (?, ?, 1, 2, 3, 'm', ?)""")) {
                insert.setObject(1, row.requestId());
                insert.setLong(2, user);
                insert.setObject(3, row.servedAt().atOffset(ZoneOffset.UTC));
                insert.executeUpdate();
            }

            // When the repository writes it
            long start = System.nanoTime();
            assertThatThrownBy(() -> repository.record(List.of(row))).isInstanceOf(UsageWriteException.Recoverable.class);
            Duration waited = Duration.ofNanos(System.nanoTime() - start);

            // Then it gives up after its write timeout (1 s here), not the pool's 30 s socket timeout: the rows can go to
            // the journal while the answers wait
            assertThat(waited).as("the write gave up after %d ms, expected about the 1 s write timeout", waited.toMillis())
                    .isLessThan(Duration.ofSeconds(10));
            blocker.rollback();
        }

        // And written again once PostgreSQL answers, the row is there once
        repository.record(List.of(row));
        assertThat(count()).isEqualTo(1);
    }

    private UsageRecord row(int promptTokens, int completionTokens) {
        return new UsageRecord(UUID.randomUUID(), user, new TokenUsage(promptTokens, completionTokens), "m", Instant.now());
    }

    /** A row of a day the test database's rollups are past (its migration rolled up every day before its own). */
    private UsageRecord lateRow(int promptTokens, int completionTokens) {
        return new UsageRecord(UUID.randomUUID(), user, new TokenUsage(promptTokens, completionTokens), "m",
                Instant.parse("2026-10-15T12:00:00Z"));
    }

    private long count() {
        return jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id = ?").param(user).query(Long.class).single();
    }
}
