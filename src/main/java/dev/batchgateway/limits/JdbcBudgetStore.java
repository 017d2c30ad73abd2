package dev.batchgateway.limits;

import dev.batchgateway.budget.BudgetStore;
import dev.batchgateway.budget.BudgetStoreUnavailableException;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.budget.Window;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/**
 * Limits in {@code user_limits}, budgets in {@code budget_window}: a lease is one {@code INSERT … ON CONFLICT DO UPDATE}
 * that locks each window's row, reads what is granted and grants within the limit, so concurrent leases from any
 * number of instances are serialised per row by PostgreSQL and never grant past the limit together. Rows are
 * locked in one order (user, kind, start) by every statement that locks several, so they never deadlock.
 */
@Repository
class JdbcBudgetStore implements BudgetStore {

    /** At least {@code need} when the limit leaves that much; beyond it up to {@code want}, at most half of what is left. */
    private static final String GRANT_FROM_NOTHING = "CASE WHEN p.lim >= p.need THEN least(p.want, greatest(p.need, p.lim / 2)) ELSE 0 END";
    private static final String GRANT = """
            (SELECT CASE WHEN p.lim - w.granted >= p.need THEN least(p.want, greatest(p.need, (p.lim - w.granted) / 2)) ELSE 0 END
             FROM proposed p
             WHERE p.user_id = excluded.user_id AND p.kind = excluded.kind AND p.window_start = excluded.window_start)""";
    private static final String LEASE = """
            WITH proposed AS (
                SELECT user_id, kind, timestamptz 'epoch' + start_micros * interval '1 microsecond' AS window_start, lim, need, want
                FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[])
                     AS ask (user_id, kind, start_micros, lim, need, want)
            )
            INSERT INTO budget_window AS w (user_id, kind, window_start, granted, last_grant)
            SELECT p.user_id, p.kind, p.window_start, %1$s, %1$s
            FROM proposed p
            ORDER BY p.user_id, p.kind, p.window_start
            ON CONFLICT (user_id, kind, window_start) DO UPDATE
            SET last_grant = %2$s,
                granted = w.granted + %2$s
            RETURNING user_id, kind, window_start, last_grant, granted, consumed
            """.formatted(GRANT_FROM_NOTHING, GRANT);
    private static final String GIVE_BACK = """
            WITH back AS (
                SELECT user_id, kind, timestamptz 'epoch' + start_micros * interval '1 microsecond' AS window_start, unused, consumed
                FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[])
                     AS b (user_id, kind, start_micros, unused, consumed)
            ), locked AS (
                SELECT w.user_id, w.kind, w.window_start
                FROM budget_window w JOIN back b USING (user_id, kind, window_start)
                ORDER BY w.user_id, w.kind, w.window_start
                FOR UPDATE OF w
            )
            UPDATE budget_window w
            SET granted = w.granted - b.unused, consumed = w.consumed + b.consumed
            FROM back b JOIN locked l USING (user_id, kind, window_start)
            WHERE w.user_id = b.user_id AND w.kind = b.kind AND w.window_start = b.window_start
            """;

    private final JdbcClient jdbc;

    JdbcBudgetStore(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    @Override
    public void putLimits(long user, Limits limits) {
        reaching(() -> jdbc.sql("""
                        INSERT INTO user_limits (user_id, tokens_per_day, tokens_per_month, requests_per_minute, updated_at)
                        VALUES (?, ?, ?, ?, clock_timestamp())
                        ON CONFLICT (user_id) DO UPDATE
                        SET tokens_per_day = excluded.tokens_per_day, tokens_per_month = excluded.tokens_per_month,
                            requests_per_minute = excluded.requests_per_minute, updated_at = excluded.updated_at""")
                .params(user, limits.tokensPerDay(), limits.tokensPerMonth(), limits.requestsPerMinute())
                .update());
    }

    @Override
    public Optional<Limits> limitsOf(long user) {
        return reaching(() -> jdbc.sql("""
                        SELECT tokens_per_day, tokens_per_month, requests_per_minute FROM user_limits WHERE user_id = ?""")
                .param(user)
                .query((rs, row) -> limits(rs))
                .optional());
    }

    @Override
    public LimitsChanges limitsChangedSince(Instant since) {
        // the time of reading comes with the rows, from the same statement: the next read asks from there
        return reaching(() -> {
            Map<Long, Limits> changed = new HashMap<>();
            Instant[] readAt = new Instant[1];
            jdbc.sql("""
                            SELECT t.read_at, l.user_id, l.tokens_per_day, l.tokens_per_month, l.requests_per_minute
                            FROM (SELECT statement_timestamp() AS read_at) t
                            LEFT JOIN user_limits l ON l.updated_at >= ?""")
                    .param(at(since == null ? Instant.EPOCH : since))
                    .query(rs -> {
                        readAt[0] = rs.getObject("read_at", OffsetDateTime.class).toInstant();
                        long user = rs.getLong("user_id");
                        if (!rs.wasNull()) {
                            changed.put(user, limits(rs));
                        }
                    });
            return new LimitsChanges(changed, readAt[0]);
        });
    }

    @Override
    public List<Grant> lease(List<Ask> asks) {
        if (asks.isEmpty()) {
            return List.of();
        }
        int size = asks.size();
        var users = new long[size];
        var kinds = new String[size];
        var starts = new long[size];
        var limits = new long[size];
        var needs = new long[size];
        var wants = new long[size];
        for (int i = 0; i < size; i++) {
            Ask ask = asks.get(i);
            users[i] = ask.account().user();
            kinds[i] = kind(ask.account().window());
            starts[i] = micros(ask.account().start());
            limits[i] = ask.limit();
            needs[i] = ask.need();
            wants[i] = ask.want();
        }
        return reaching(() -> jdbc.sql(LEASE)
                .params(users, kinds, starts, limits, needs, wants)
                .query((rs, row) -> new Grant(account(rs), rs.getLong("last_grant"), rs.getLong("granted"), rs.getLong("consumed")))
                .list());
    }

    @Override
    public void giveBack(List<GiveBack> giveBacks) {
        if (giveBacks.isEmpty()) {
            return;
        }
        int size = giveBacks.size();
        var users = new long[size];
        var kinds = new String[size];
        var starts = new long[size];
        var unused = new long[size];
        var consumed = new long[size];
        for (int i = 0; i < size; i++) {
            GiveBack back = giveBacks.get(i);
            users[i] = back.account().user();
            kinds[i] = kind(back.account().window());
            starts[i] = micros(back.account().start());
            unused[i] = back.unused();
            consumed[i] = back.consumed();
        }
        reaching(() -> jdbc.sql(GIVE_BACK).params(users, kinds, starts, unused, consumed).update());
    }

    @Override
    public Map<Window, Long> consumed(long user, Map<Window, Instant> windowStarts) {
        Map<Window, Long> consumed = new EnumMap<>(Window.class);
        if (windowStarts.isEmpty()) {
            return consumed;
        }
        var kinds = windowStarts.keySet().stream().map(JdbcBudgetStore::kind).toArray(String[]::new);
        var starts = windowStarts.values().stream().mapToLong(JdbcBudgetStore::micros).toArray();
        reaching(() -> {
            jdbc.sql("""
                            SELECT w.kind, w.consumed
                            FROM unnest(?::text[], ?::bigint[]) AS s (kind, start_micros)
                            JOIN budget_window w ON w.user_id = ? AND w.kind = s.kind
                                 AND w.window_start = timestamptz 'epoch' + s.start_micros * interval '1 microsecond'""")
                    .params(kinds, starts, user)
                    .query(rs -> {
                        consumed.put(window(rs.getString("kind")), rs.getLong("consumed"));
                    });
            return null;
        });
        windowStarts.keySet().forEach(window -> consumed.putIfAbsent(window, 0L));
        return consumed;
    }

    @Override
    public void forget(Map<Window, Instant> startedBefore) {
        startedBefore.forEach((window, before) -> reaching(() -> jdbc.sql(
                        "DELETE FROM budget_window WHERE kind = ? AND window_start < ?")
                .params(kind(window), at(before))
                .update()));
    }

    private static Limits limits(ResultSet rs) throws SQLException {
        return new Limits(nullableLong(rs, "tokens_per_day"), nullableLong(rs, "tokens_per_month"),
                nullableLong(rs, "requests_per_minute"));
    }

    private static Long nullableLong(ResultSet rs, String column) throws SQLException {
        long value = rs.getLong(column);
        return rs.wasNull() ? null : value;
    }

    private static Account account(ResultSet rs) throws SQLException {
        return new Account(rs.getLong("user_id"), window(rs.getString("kind")),
                rs.getObject("window_start", OffsetDateTime.class).toInstant());
    }

    private static String kind(Window window) {
        return window.name().toLowerCase(Locale.ROOT);
    }

    private static Window window(String kind) {
        return Window.valueOf(kind.toUpperCase(Locale.ROOT));
    }

    private static long micros(Instant instant) {
        return ChronoUnit.MICROS.between(Instant.EPOCH, instant);
    }

    private static Object at(Instant instant) {
        return instant.atOffset(ZoneOffset.UTC);
    }

    private static <T> T reaching(Supplier<T> query) {
        try {
            return query.get();
        } catch (DataAccessException away) {
            throw new BudgetStoreUnavailableException(
                    "the budget store is unavailable: " + away.getMostSpecificCause().getClass().getSimpleName(), away);
        }
    }
}
