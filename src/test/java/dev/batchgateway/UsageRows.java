package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import org.awaitility.Awaitility;
import org.springframework.jdbc.core.simple.JdbcClient;

/** The rows of {@code token_usage}, which the usage ledger writes shortly after the callers got their answers. */
public final class UsageRows {

    private static final Duration WRITTEN_WITHIN = Duration.ofSeconds(10);

    private UsageRows() {}

    public static long of(JdbcClient jdbc, long user) {
        return jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id = ?").param(user).query(Long.class).single();
    }

    /** One row as billed: the model, the tokens and how the call ended ({@code served}, {@code client_gone}, …). */
    public record Row(String model, long promptTokens, long completionTokens, String outcome) {}

    /** The user's rows, oldest first. */
    public static List<Row> billed(JdbcClient jdbc, long user) {
        return jdbc.sql("SELECT model, prompt_tokens, completion_tokens, outcome FROM token_usage WHERE user_id = ? ORDER BY created_at")
                .param(user)
                .query((rs, n) -> new Row(rs.getString(1), rs.getLong(2), rs.getLong(3), rs.getString(4)))
                .list();
    }

    /** Waits until the user has at least this many rows; fails after a generous 10 s. */
    public static void await(JdbcClient jdbc, long user, int count) {
        Awaitility.await().atMost(WRITTEN_WITHIN).pollInterval(Duration.ofMillis(20)).untilAsserted(() -> assertThat(of(jdbc, user))
                .as("rows of user %d written within %d s", user, WRITTEN_WITHIN.toSeconds()).isGreaterThanOrEqualTo(count));
    }
}
