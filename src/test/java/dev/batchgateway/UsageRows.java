package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.awaitility.Awaitility;
import org.springframework.jdbc.core.simple.JdbcClient;

/** The rows of {@code token_usage}, which the usage ledger writes shortly after the callers got their answers. */
public final class UsageRows {

    private static final Duration WRITTEN_WITHIN = Duration.ofSeconds(10);

    private UsageRows() {}

    public static long of(JdbcClient jdbc, long user) {
        return jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id = ?").param(user).query(Long.class).single();
    }

    /** Waits until the user has at least this many rows; fails after a generous 10 s. */
    public static void await(JdbcClient jdbc, long user, int count) {
        Awaitility.await().atMost(WRITTEN_WITHIN).pollInterval(Duration.ofMillis(20)).untilAsserted(() -> assertThat(of(jdbc, user))
                .as("rows of user %d written within %d s", user, WRITTEN_WITHIN.toSeconds()).isGreaterThanOrEqualTo(count));
    }
}
