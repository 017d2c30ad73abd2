package dev.batchgateway.usage;

import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/**
 * A user's totals in a window: the whole UTC days of the window that are rolled up (before the horizon
 * {@code usage_rollup.rolled_up_before}, V6) from the daily rollups {@code usage_daily}, and everything else (the part
 * days at its edges, and the days from the horizon on: the last day or two) from the rows of {@code token_usage}, on
 * the index (user_id, created_at). The horizon is read in the same statement as the sums, so a day being rolled up
 * meanwhile is counted once, from one side or the other; rows added to a rolled-up day are in its rollup too.
 */
@Repository
class JdbcUsageTotals {

    /**
     * How the totals may be split: not at all, by user, UTC day, model or service tier; each with its key in rollups and
     * in rows.
     */
    enum Grouping {
        NONE("''", "''"),
        USER("user_id::text", "user_id::text"),
        DAY("day::text", "(created_at AT TIME ZONE 'UTC')::date::text"),
        MODEL("model", "coalesce(model, '')"),
        SERVICE_TIER("service_tier", "service_tier");

        private final String ofRollup;
        private final String ofRow;

        Grouping(String ofRollup, String ofRow) {
            this.ofRollup = ofRollup;
            this.ofRow = ofRow;
        }
    }

    /** The first day whose rows are not all in the rollups, as a date and as its first instant. */
    private static final String HORIZON = """
            WITH horizon AS MATERIALIZED (
                SELECT rolled_up_before AS day, rolled_up_before::timestamp AT TIME ZONE 'UTC' AS at FROM usage_rollup)
            """;

    private static final String DAYS = """
            SELECT %s, outcome, service_tier, requests, prompt_tokens, completion_tokens
            FROM usage_daily
            WHERE true""";

    private static final String ROWS = """
            SELECT %s, outcome, service_tier, 1, prompt_tokens, completion_tokens
            FROM token_usage
            WHERE true""";

    private final JdbcClient jdbc;

    JdbcUsageTotals(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    /**
     * @param from the first instant counted, or null for no lower bound
     * @param to the first instant no longer counted, or null for no upper bound
     */
    UsageTotals totals(long user, Instant from, Instant to) {
        return UsageTotals.of(user, grouped(user, from, to, Grouping.NONE).getOrDefault("", Map.of()));
    }

    /**
     * The totals by group key (a day as 2026-11-24, a model, '' for rows without one, a tier, or a user id), each by
     * outcome and tier, in key order.
     *
     * @param user the user whose usage is summed, or null for every user's
     */
    Map<String, Map<UsageTotals.Split, UsageTotals.Sum>> grouped(Long user, Instant from, Instant to, Grouping grouping) {
        var parts = new ArrayList<String>();
        var params = new HashMap<String, Object>();
        // one user's usage is read on the indexes' leading user_id; the export reads everyone's
        String ofUser = user == null ? "" : " AND user_id = :user";
        if (user != null) {
            params.put("user", user);
        }
        // the whole days: from the first midnight at or after `from` to the last midnight at or before `to`
        LocalDate firstDay = from == null ? null : ceilingDay(from);
        LocalDate endDay = to == null ? null : floorDay(to);
        if (firstDay != null && endDay != null && !firstDay.isBefore(endDay)) {
            // no whole day inside: the window's rows themselves (less than two days of them)
            parts.add(rows(grouping, ofUser, params, "r", from, to));
        } else {
            // the whole days before the horizon from the rollups, the part day at the start from its rows
            var days = new StringBuilder(DAYS.formatted(grouping.ofRollup)).append(ofUser);
            if (firstDay != null) {
                days.append(" AND day >= :firstDay");
                params.put("firstDay", firstDay);
                if (!midnight(firstDay).equals(from)) {
                    parts.add(rows(grouping, ofUser, params, "head", from, midnight(firstDay)));
                }
            }
            // the rollups end at the window's last midnight or at the horizon, whichever comes first; the rows take over
            // there (or at the window's first midnight, if the horizon is before it) up to the window's end
            String rollupsEnd = "(SELECT day FROM horizon)";
            String rowsStart = "(SELECT at FROM horizon)";
            if (endDay != null) {
                params.put("endDay", endDay);
                params.put("endDayAt", midnight(endDay).atOffset(ZoneOffset.UTC));
                rollupsEnd = "least(:endDay, " + rollupsEnd + ")";
                rowsStart = "least(:endDayAt, " + rowsStart + ")";
            }
            if (firstDay != null) {
                params.put("firstDayAt", midnight(firstDay).atOffset(ZoneOffset.UTC));
                rowsStart = "greatest(:firstDayAt, " + rowsStart + ")";
            }
            parts.add(days.append(" AND day < ").append(rollupsEnd).toString());
            var rest = new StringBuilder(ROWS.formatted(grouping.ofRow)).append(ofUser)
                    .append(" AND created_at >= ").append(rowsStart);
            if (to != null) {
                rest.append(" AND created_at < :restTo");
                params.put("restTo", atMicros(to));
            }
            parts.add(rest.toString());
        }
        String sql = HORIZON + "SELECT grp, outcome, service_tier, sum(requests), sum(prompt_tokens), sum(completion_tokens)"
                + " FROM (\n" + String.join("\nUNION ALL\n", parts)
                + "\n) AS counted (grp, outcome, service_tier, requests, prompt_tokens, completion_tokens)"
                + " GROUP BY grp, outcome, service_tier";
        Map<String, Map<UsageTotals.Split, UsageTotals.Sum>> groups = new TreeMap<>();
        jdbc.sql(sql)
                .params(params)
                .query(rs -> {
                    long prompt = rs.getLong(5);
                    long completion = rs.getLong(6);
                    groups.computeIfAbsent(rs.getString(1), key -> new HashMap<>())
                            .put(new UsageTotals.Split(rs.getString(2), rs.getString(3)),
                                    new UsageTotals.Sum(rs.getLong(4), prompt, completion, prompt + completion));
                });
        return groups;
    }

    private static String rows(
            Grouping grouping, String ofUser, Map<String, Object> params, String name, Instant from, Instant to) {
        params.put(name + "From", atMicros(from));
        params.put(name + "To", atMicros(to));
        return ROWS.formatted(grouping.ofRow) + ofUser + " AND created_at >= :" + name + "From AND created_at < :" + name + "To";
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
