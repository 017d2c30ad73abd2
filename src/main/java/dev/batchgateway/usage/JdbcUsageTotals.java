package dev.batchgateway.usage;

import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/**
 * A user's totals in a window: the whole UTC days of the window from the daily rollups {@code usage_daily}, the part
 * days at its edges (at most two) from the rows of {@code token_usage}, on the index (user_id, created_at). The
 * rollups are written with the rows, so both agree to the row; an open window's days up to today are all rollups.
 */
@Repository
class JdbcUsageTotals {

    private static final String DAYS = """
            SELECT outcome, requests, prompt_tokens, completion_tokens
            FROM usage_daily
            WHERE user_id = :user""";

    private static final String ROWS = """
            SELECT outcome, 1, prompt_tokens, completion_tokens
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
        var parts = new ArrayList<String>();
        var params = new HashMap<String, Object>();
        params.put("user", user);
        // the whole days: from the first midnight at or after `from` to the last midnight at or before `to`
        LocalDate firstDay = from == null ? null : ceilingDay(from);
        LocalDate endDay = to == null ? null : floorDay(to);
        if (firstDay != null && endDay != null && !firstDay.isBefore(endDay)) {
            // no whole day inside: the window's rows themselves (less than two days of them)
            parts.add(rows(params, "r", from, to));
        } else {
            var days = new StringBuilder(DAYS);
            if (firstDay != null) {
                days.append(" AND day >= :firstDay");
                params.put("firstDay", firstDay);
                if (!midnight(firstDay).equals(from)) {
                    parts.add(rows(params, "head", from, midnight(firstDay)));
                }
            }
            if (endDay != null) {
                days.append(" AND day < :endDay");
                params.put("endDay", endDay);
                if (!midnight(endDay).equals(to)) {
                    parts.add(rows(params, "tail", midnight(endDay), to));
                }
            }
            parts.add(days.toString());
        }
        String sql = "SELECT outcome, sum(requests), sum(prompt_tokens), sum(completion_tokens) FROM (\n"
                + String.join("\nUNION ALL\n", parts)
                + "\n) AS counted (outcome, requests, prompt_tokens, completion_tokens) GROUP BY outcome";
        Map<String, UsageTotals.Sum> byOutcome = new HashMap<>();
        jdbc.sql(sql)
                .params(params)
                .query(rs -> {
                    long prompt = rs.getLong(3);
                    long completion = rs.getLong(4);
                    byOutcome.put(rs.getString(1), new UsageTotals.Sum(rs.getLong(2), prompt, completion, prompt + completion));
                });
        return UsageTotals.of(user, byOutcome);
    }

    private static String rows(Map<String, Object> params, String name, Instant from, Instant to) {
        params.put(name + "From", atMicros(from));
        params.put(name + "To", atMicros(to));
        return ROWS + " AND created_at >= :" + name + "From AND created_at < :" + name + "To";
    }

    private static LocalDate floorDay(Instant instant) {
        return LocalDate.ofInstant(instant, ZoneOffset.UTC);
    }

    private static LocalDate ceilingDay(Instant instant) {
        LocalDate day = floorDay(instant);
        return midnight(day).equals(instant) ? day : day.plusDays(1);
    }

    private static Instant midnight(LocalDate day) {
        return day.atStartOfDay(ZoneOffset.UTC).toInstant();
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
