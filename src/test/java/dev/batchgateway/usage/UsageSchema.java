package dev.batchgateway.usage;

import com.zaxxer.hikari.HikariDataSource;
import dev.batchgateway.TestDatabase;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.flywaydb.core.Flyway;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * A schema of its own on the real test PostgreSQL, migrated to any version: for tests that move the rollup horizon or
 * drop partitions, which must not disturb the shared schema other tests write to. {@link #drop()} removes it.
 */
final class UsageSchema {

    final String name = "usage_" + Long.toString(ThreadLocalRandom.current().nextLong(1L << 40), 36);
    private final DriverManagerDataSource admin = dataSource("");
    /**
     * Connections whose search path is the schema, as the gateway's are the database's default schema; pooled, as the
     * gateway's are (a connection opened for every statement took most of a test's time).
     */
    final HikariDataSource dataSource = pooled(dataSource("currentSchema=" + name));
    /** Statements run in the schema. */
    final JdbcClient jdbc = JdbcClient.create(dataSource);

    private static DriverManagerDataSource dataSource(String option) {
        var coordinates = TestDatabase.get();
        String url = option.isEmpty() ? coordinates.url()
                : coordinates.url() + (coordinates.url().contains("?") ? "&" : "?") + option;
        return new DriverManagerDataSource(url, coordinates.username(), coordinates.password());
    }

    private static HikariDataSource pooled(DriverManagerDataSource connections) {
        var pool = new HikariDataSource();
        pool.setJdbcUrl(connections.getUrl());
        pool.setUsername(connections.getUsername());
        pool.setPassword(connections.getPassword());
        pool.setMaximumPoolSize(8);
        pool.setMinimumIdle(0);
        return pool;
    }

    UsageSchema migrate(String target) {
        Flyway.configure().dataSource(admin).schemas(name).target(target).load().migrate();
        return this;
    }

    void drop() {
        dataSource.close();
        JdbcClient.create(admin).sql("DROP SCHEMA IF EXISTS " + name + " CASCADE").update();
    }

    /**
     * Moves the rollup horizon, as if the gateway had been running then: the days before {@code rolledUpBefore} count as
     * rolled up, those before {@code closingBefore} as closed (the late-row trigger's condition with them).
     */
    void horizon(String rolledUpBefore, String closingBefore) {
        jdbc.sql("SELECT usage_rollup_late_trigger(?::date)").param(closingBefore).query().singleValue();
        jdbc.sql("UPDATE usage_rollup SET rolled_up_before = ?::date, closing_before = ?::date")
                .params(rolledUpBefore, closingBefore).update();
    }

    List<Map<String, Object>> rollups() {
        return jdbc.sql("SELECT user_id, day, model, outcome, service_tier, requests, prompt_tokens, completion_tokens"
                        + " FROM usage_daily ORDER BY 1, 2, 3, 4, 5")
                .query().listOfRows();
    }

    /** What the rollups must be for the days before the horizon: the rows' sums per user, day, model, outcome and tier. */
    List<Map<String, Object>> sumsOfRowsRolledUp() {
        return jdbc.sql("""
                        SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS day, coalesce(model, '') AS model, outcome,
                               service_tier, count(*) AS requests, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens
                        FROM token_usage
                        WHERE created_at < (SELECT rolled_up_before::timestamp AT TIME ZONE 'UTC' FROM usage_rollup)
                        GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5""")
                .query().listOfRows();
    }
}
