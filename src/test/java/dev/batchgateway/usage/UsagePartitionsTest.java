package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.TestDatabase;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * Monthly partitions, each test in a schema of its own on the real test PostgreSQL: the V4 migration of a populated
 * table (token_usage as V3 left it becomes the partitioned table without losing or doubling a row, and the daily
 * rollups start out equal to the rows' sums), and retention (months dropped whole, totals kept).
 */
class UsagePartitionsTest {

    private final String schema = "migration_" + Long.toString(ThreadLocalRandom.current().nextLong(1L << 40), 36);
    private final DriverManagerDataSource dataSource = dataSource();
    private final JdbcClient jdbc = JdbcClient.create(dataSource);

    private static DriverManagerDataSource dataSource() {
        var coordinates = TestDatabase.get();
        return new DriverManagerDataSource(coordinates.url(), coordinates.username(), coordinates.password());
    }

    @AfterEach
    void dropSchema() {
        jdbc.sql("DROP SCHEMA IF EXISTS " + schema + " CASCADE").update();
    }

    private Flyway flyway(String target) {
        return Flyway.configure().dataSource(dataSource).schemas(schema).target(target).load();
    }

    @Test
    void aPopulatedTableMovesIntoMonthlyPartitionsRowForRow() {
        // Given token_usage as V3 left it, with 5,001 rows of 7 users over 20 months and one in 2019 (a few with no
        // model, every outcome, times to the microsecond)
        flyway("3").migrate();
        jdbc.sql("""
                WITH drawn AS (
                    SELECT i, 1 + (random() * 6)::int AS u, (random() * 500)::int AS p, (random() * 500)::int AS c,
                           random() AS t
                    FROM generate_series(1, 5000) AS i)
                INSERT INTO %s.token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model,
                                            created_at, outcome)
                SELECT gen_random_uuid(), u, p, c, p + c, CASE WHEN i %% 97 = 0 THEN NULL ELSE 'm' || i %% 3 END,
                       timestamptz '2025-03-14 09:26:53.589793+00' + t * interval '600 days',
                       (ARRAY['served', 'client_gone', 'deadline', 'stream_failed'])[1 + i %% 4]
                FROM drawn
                UNION ALL
                SELECT gen_random_uuid(), 1, 3, 4, 7, 'm0', timestamptz '2019-07-01 00:00:00+00', 'served'
                """.formatted(schema)).update();
        var before = jdbc.sql("SELECT request_id::text || ' ' || user_id || ' ' || prompt_tokens || ' ' || completion_tokens"
                        + " || ' ' || coalesce(model, '-') || ' ' || created_at || ' ' || outcome FROM " + schema
                        + ".token_usage ORDER BY 1")
                .query(String.class).list();

        // When the gateway's migrations run
        flyway("latest").migrate();

        // Then token_usage is partitioned and holds exactly the same rows, each once, in the partition of its month
        assertThat(jdbc.sql("SELECT relkind::text FROM pg_class WHERE oid = '" + schema + ".token_usage'::regclass")
                .query(String.class).single()).isEqualTo("p");
        var after = jdbc.sql("SELECT request_id::text || ' ' || user_id || ' ' || prompt_tokens || ' ' || completion_tokens"
                        + " || ' ' || coalesce(model, '-') || ' ' || created_at || ' ' || outcome FROM " + schema
                        + ".token_usage ORDER BY 1")
                .query(String.class).list();
        assertThat(after).hasSize(5001).isEqualTo(before);
        assertThat(jdbc.sql("SELECT count(*) FROM " + schema + ".token_usage_default").query(Long.class).single()).isZero();
        assertThat(jdbc.sql("SELECT count(*) FROM " + schema + ".token_usage_y2019m07").query(Long.class).single()).isOne();
        assertThat(jdbc.sql("""
                        SELECT count(*) FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
                        WHERE inhparent = '%s.token_usage'::regclass AND c.relname <> 'token_usage_default'""".formatted(schema))
                .query(Long.class).single())
                .as("one partition a month from July 2019 through two months from now")
                .isGreaterThanOrEqualTo(12 * 6 + 5);

        // And the daily rollups equal the rows' sums, per user, day, model and outcome
        assertThat(rollups()).isEqualTo(sumsOfRows()).isNotEmpty();
    }

    @Test
    void monthsPastRetentionAreDroppedWholeAndEveryTotalSurvivesThem() {
        // Given the latest schema, its partitions since July 2019 (as after importing old rows), and rows in July 2019,
        // January 2024, last month and now, for two users
        flyway("latest").migrate();
        jdbc.sql("SELECT %s.token_usage_create_partitions('2019-07-01', now())".formatted(schema)).query().singleValue();
        jdbc.sql("""
                INSERT INTO %s.token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model,
                                            created_at, outcome)
                SELECT gen_random_uuid(), 1 + i %% 2, i, 2 * i, 3 * i, 'm', at, 'served'
                FROM generate_series(1, 40) AS i,
                     unnest(ARRAY[timestamptz '2019-07-31 23:59:59.999999+00', timestamptz '2024-01-01 00:00:00+00',
                                  now() - interval '1 month', now()]) AS at
                """.formatted(schema)).update();
        var inSchema = schemaDataSource();
        var totals = new JdbcUsageTotals(JdbcClient.create(inSchema));
        var before = List.of(totals.totals(1, null, null), totals.totals(2, null, null));
        var rollupsBefore = rollups();

        // When the partitions are maintained with a retention of 400 days
        int[] done = new UsagePartitions(JdbcClient.create(inSchema), java.time.Duration.ofDays(400)).maintain();

        // Then the months all of whose rows are older than 400 days are gone, whole, and the recent ones are there
        assertThat(done[1]).as("months dropped").isGreaterThanOrEqualTo(2);
        assertThat(partitions()).doesNotContain("token_usage_y2019m07", "token_usage_y2024m01")
                .contains("token_usage_default");
        assertThat(jdbc.sql("SELECT count(*) FROM " + schema + ".token_usage").query(Long.class).single())
                .isEqualTo(2 * 40);
        // And every total is as it was: the rollups kept the dropped months
        assertThat(rollups()).isEqualTo(rollupsBefore);
        assertThat(List.of(totals.totals(1, null, null), totals.totals(2, null, null))).isEqualTo(before);
        assertThat(before.getFirst().requests() + before.getLast().requests()).isEqualTo(4 * 40);

        // And maintaining again drops nothing more and creates nothing new
        assertThat(new UsagePartitions(JdbcClient.create(inSchema), java.time.Duration.ofDays(400)).maintain())
                .containsExactly(0, 0);
        // And without retention nothing is ever dropped
        assertThat(new UsagePartitions(JdbcClient.create(inSchema), (java.time.Duration) null).maintain()).containsExactly(0, 0);
    }

    /** Connections whose search path is the test's schema, as the gateway's are the database's default schema. */
    private DriverManagerDataSource schemaDataSource() {
        var coordinates = TestDatabase.get();
        String url = coordinates.url() + (coordinates.url().contains("?") ? "&" : "?") + "currentSchema=" + schema;
        return new DriverManagerDataSource(url, coordinates.username(), coordinates.password());
    }

    private List<String> partitions() {
        return jdbc.sql("""
                        SELECT c.relname::text FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
                        WHERE inhparent = '%s.token_usage'::regclass ORDER BY 1""".formatted(schema))
                .query(String.class).list();
    }

    private List<Map<String, Object>> rollups() {
        return jdbc.sql("SELECT user_id, day, model, outcome, requests, prompt_tokens, completion_tokens FROM " + schema
                        + ".usage_daily ORDER BY 1, 2, 3, 4")
                .query().listOfRows();
    }

    private List<Map<String, Object>> sumsOfRows() {
        return jdbc.sql("""
                        SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS day, coalesce(model, '') AS model, outcome,
                               count(*) AS requests, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens
                        FROM %s.token_usage GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""".formatted(schema))
                .query().listOfRows();
    }
}
