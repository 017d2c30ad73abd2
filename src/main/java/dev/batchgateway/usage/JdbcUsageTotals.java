package dev.batchgateway.usage;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.HashMap;
import java.util.Map;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/** Sums a user's rows of {@code token_usage}, on the index (user_id, created_at). */
@Repository
class JdbcUsageTotals {

    private static final String TOTALS = """
            SELECT outcome, count(*), sum(prompt_tokens), sum(completion_tokens), sum(total_tokens)
            FROM token_usage
            WHERE user_id = :user""";

    private final JdbcClient jdbc;

    JdbcUsageTotals(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    /**
     * @param from the first instant counted, or null for no lower bound
     * @param to the first instant no longer counted, or null for no upper bound
     */
    UsageTotals totals(long user, Instant from, Instant to) {
        var sql = new StringBuilder(TOTALS);
        var params = new HashMap<String, Object>();
        params.put("user", user);
        if (from != null) {
            sql.append(" AND created_at >= :from");
            params.put("from", atMicros(from));
        }
        if (to != null) {
            sql.append(" AND created_at < :to");
            params.put("to", atMicros(to));
        }
        sql.append(" GROUP BY outcome");
        Map<String, UsageTotals.Sum> byOutcome = new HashMap<>();
        jdbc.sql(sql.toString())
                .params(params)
                .query(rs -> {
                    byOutcome.put(rs.getString(1), new UsageTotals.Sum(rs.getLong(2), rs.getLong(3), rs.getLong(4), rs.getLong(5)));
                });
        return UsageTotals.of(user, byOutcome);
    }

    /**
     * PostgreSQL keeps microseconds. A stored time t (whole microseconds) lies at or after an instant x exactly when it
     * lies at or after x rounded up to the microsecond, so rounding up keeps both bounds exact.
     */
    private static Object atMicros(Instant instant) {
        Instant truncated = instant.truncatedTo(ChronoUnit.MICROS);
        Instant up = truncated.equals(instant) ? truncated : truncated.plus(1, ChronoUnit.MICROS);
        return up.atOffset(ZoneOffset.UTC);
    }
}
