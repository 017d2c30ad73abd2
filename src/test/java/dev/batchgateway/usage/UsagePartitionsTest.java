package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.TestDatabase;
import java.time.Duration;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * Monthly partitions, each test in a schema of its own on the real test PostgreSQL: the V5 migration of a populated
 * table (token_usage as V3 left it becomes the partitioned table without losing or doubling a row, and the daily
 * rollups start out equal to the rows' sums), and retention (months dropped whole once rolled up, totals kept).
 */
@Tag(TestDatabase.TAG)
class UsagePartitionsTest {

    private final UsageSchema schema = new UsageSchema();
    private final JdbcClient jdbc = schema.jdbc;

    @AfterEach
    void dropSchema() {
        schema.drop();
    }

    @Test
    void aPopulatedTableMovesIntoMonthlyPartitionsRowForRow() {
        // Given token_usage as V3 left it, with 5,001 rows of 7 users over 20 months and one in 2019 (a few with no
        // model, every outcome, times to the microsecond)
        schema.migrate("3");
        jdbc.sql("""
                WITH drawn AS (
                    SELECT i, 1 + (random() * 6)::int AS u, (random() * 500)::int AS p, (random() * 500)::int AS c,
                           random() AS t
                    FROM generate_series(1, 5000) AS i)
                INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model,
                                            created_at, outcome)
                SELECT gen_random_uuid(), u, p, c, p + c, CASE WHEN i % 97 = 0 THEN NULL ELSE 'm' || i % 3 END,
                       timestamptz '2025-03-14 09:26:53.589793+00' + t * interval '600 days',
                       (ARRAY['served', 'client_gone', 'deadline', 'stream_failed'])[1 + i % 4]
                FROM drawn
                UNION ALL
                SELECT gen_random_uuid(), 1, 3, 4, 7, 'm0', timestamptz '2019-07-01 00:00:00+00', 'served'
                """).update();
        var before = jdbc.sql("SELECT request_id::text || ' ' || user_id || ' ' || prompt_tokens || ' ' || completion_tokens"
                        + " || ' ' || coalesce(model, '-') || ' ' || created_at || ' ' || outcome FROM token_usage ORDER BY 1")
                .query(String.class).list();

        // When the gateway's migrations run
        schema.migrate("latest");

        // Then token_usage is partitioned and holds exactly the same rows, each once, in the partition of its month
        assertThat(jdbc.sql("SELECT relkind::text FROM pg_class WHERE oid = 'token_usage'::regclass")
                .query(String.class).single()).isEqualTo("p");
        var after = jdbc.sql("SELECT request_id::text || ' ' || user_id || ' ' || prompt_tokens || ' ' || completion_tokens"
                        + " || ' ' || coalesce(model, '-') || ' ' || created_at || ' ' || outcome FROM token_usage ORDER BY 1")
                .query(String.class).list();
        assertThat(after).hasSize(5001).isEqualTo(before);
        assertThat(jdbc.sql("SELECT count(*) FROM token_usage_default").query(Long.class).single()).isZero();
        assertThat(jdbc.sql("SELECT count(*) FROM token_usage_y2019m07").query(Long.class).single()).isOne();
        assertThat(jdbc.sql("""
                        SELECT count(*) FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
                        WHERE inhparent = 'token_usage'::regclass AND c.relname <> 'token_usage_default'""")
                .query(Long.class).single())
                .as("one partition a month from July 2019 through two months from now")
                .isGreaterThanOrEqualTo(12 * 6 + 5);

        // And the daily rollups equal the rows' sums, per user, day, model and outcome, for the days before today (which
        // is read from its rows until it has ended and is rolled up)
        assertThat(schema.rollups()).isEqualTo(schema.sumsOfRowsRolledUp()).isNotEmpty();
    }

    @Test
    void monthsPastRetentionAreDroppedWholeAndEveryTotalSurvivesThem() {
        // Given the latest schema, its partitions since July 2019 (as after importing old rows), the days from the 15th
        // of the month three months ago on not rolled up yet (a recent horizon: rolling up is a day's statements a day),
        // and rows in July 2019, on the 1st of that month, last month and now, for two users
        schema.migrate("latest");
        jdbc.sql("SELECT token_usage_create_partitions('2019-07-01', now())").query().singleValue();
        LocalDate unrolled = LocalDate.now(ZoneOffset.UTC).minusMonths(3).withDayOfMonth(1);
        String unrolledMonth = "token_usage_y%04dm%02d".formatted(unrolled.getYear(), unrolled.getMonthValue());
        schema.horizon(unrolled.withDayOfMonth(15).toString(), unrolled.withDayOfMonth(15).toString());
        jdbc.sql("""
                INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model,
                                            created_at, outcome)
                SELECT gen_random_uuid(), 1 + i % 2, i, 2 * i, 3 * i, 'm', at, 'served'
                FROM generate_series(1, 40) AS i,
                     unnest(ARRAY[timestamptz '2019-07-31 23:59:59.999999+00', ?::date::timestamp AT TIME ZONE 'UTC',
                                  now() - interval '1 month', now()]) AS at
                """).param(unrolled.toString()).update();
        var totals = new JdbcUsageTotals(schema.jdbc);
        var before = List.of(totals.totals(1, null, null), totals.totals(2, null, null));
        var rollupsBefore = schema.rollups();
        // (that month ended 59 days ago at least, last month at most 31)
        var maintenance = new UsagePartitions(schema.jdbc, Duration.ofDays(45));

        // When the partitions are maintained with a retention of 45 days
        int[] done = maintenance.maintain();

        // Then the months all of whose rows are older than 45 days are gone, whole, but only those rolled up: the month
        // three months ago is kept
        assertThat(done[1]).as("months dropped").isGreaterThanOrEqualTo(1);
        assertThat(partitions()).doesNotContain("token_usage_y2019m07").contains(unrolledMonth, "token_usage_default");
        assertThat(jdbc.sql("SELECT count(*) FROM token_usage").query(Long.class).single()).isEqualTo(3 * 40);
        // And every total is as it was: the rollups kept the dropped month
        assertThat(schema.rollups()).isEqualTo(rollupsBefore);
        assertThat(List.of(totals.totals(1, null, null), totals.totals(2, null, null))).isEqualTo(before);
        assertThat(before.getFirst().requests() + before.getLast().requests()).isEqualTo(4 * 40);

        // And once every day before today is rolled up, maintaining drops that month too, and still every total is kept
        new DailyRollups(schema.jdbc).rollUp();
        assertThat(maintenance.maintain()[1]).isGreaterThanOrEqualTo(1);
        assertThat(partitions()).doesNotContain(unrolledMonth);
        assertThat(jdbc.sql("SELECT count(*) FROM token_usage").query(Long.class).single()).isEqualTo(2 * 40);
        assertThat(List.of(totals.totals(1, null, null), totals.totals(2, null, null))).isEqualTo(before);

        // And maintaining again drops nothing more and creates nothing new
        assertThat(maintenance.maintain()).containsExactly(0, 0);
        // And without retention nothing is ever dropped
        assertThat(new UsagePartitions(schema.jdbc, (Duration) null).maintain()).containsExactly(0, 0);
    }

    private List<String> partitions() {
        return jdbc.sql("""
                        SELECT c.relname::text FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
                        WHERE inhparent = 'token_usage'::regclass ORDER BY 1""")
                .query(String.class).list();
    }
}
