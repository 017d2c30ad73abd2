package dev.batchgateway.limits;

import dev.batchgateway.budget.BudgetSettings;
import dev.batchgateway.budget.BudgetStore;
import dev.batchgateway.budget.BudgetStoreUnavailableException;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.budget.Window;
import dev.batchgateway.jdbc.BoundedStatements;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.function.Function;
import java.util.function.Supplier;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.CannotGetJdbcConnectionException;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/**
 * Limits in {@code user_limits}, budgets in {@code budget_window} and {@code budget_hold}: leases, give-backs and
 * resolutions are the functions of V7, each one statement that locks each window's row and then the instance's hold,
 * in one order (user, kind, start), so concurrent ones from any number of instances are serialised per window by
 * PostgreSQL, never grant past the limit together and never deadlock.
 *
 * <p>Those statements wait at most {@code gateway.budget.statement-timeout} for their answer (the connection's network
 * timeout; the pool's socket timeout is 30 s): past it the gateway does not know whether one committed, and resolves it.
 */
@Repository
class JdbcBudgetStore implements BudgetStore {

    private static final String LEASE = """
            SELECT user_id, kind, window_start, granted, taken, consumed, lost
            FROM budget_lease(?::uuid, ?, ?, ?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[])""";
    private static final String GIVE_BACK = """
            SELECT user_id, kind, window_start, held, lost
            FROM budget_give_back(?::uuid, ?, ?, ?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[])""";
    private static final String RESOLVE = """
            SELECT user_id, kind, window_start, applied, granted, lost
            FROM budget_resolve(?::uuid, ?, ?::bigint[], ?::text[], ?::bigint[])""";

    private final JdbcClient jdbc;
    private final BoundedStatements bounded;

    JdbcBudgetStore(JdbcClient jdbc, JdbcTemplate template, Duration statementTimeout) {
        this.jdbc = jdbc;
        this.bounded = new BoundedStatements(template, statementTimeout);
    }

    @Autowired
    JdbcBudgetStore(JdbcClient jdbc, JdbcTemplate template, BudgetSettings settings) {
        this(jdbc, template, settings.statementTimeout());
    }

    @Override
    public void putLimits(long user, Limits limits) {
        reaching(() -> jdbc.sql("""
                        INSERT INTO user_limits (user_id, tokens_per_day, tokens_per_month, requests_per_minute, updated_at)
                        VALUES (?, ?, ?, ?, clock_timestamp())
                        ON CONFLICT (user_id) DO UPDATE
                        SET tokens_per_day = excluded.tokens_per_day, tokens_per_month = excluded.tokens_per_month,
                            requests_per_minute = excluded.requests_per_minute, updated_at = excluded.updated_at,
                            cleared = false""")
                .params(user, limits.tokensPerDay(), limits.tokensPerMonth(), limits.requestsPerMinute())
                .update());
    }

    @Override
    public void clearLimits(long user) {
        // the row stays, marked cleared and changed now, so that the other instances' next read of changes sees it
        reaching(() -> jdbc.sql("""
                        UPDATE user_limits
                        SET tokens_per_day = NULL, tokens_per_month = NULL, requests_per_minute = NULL, cleared = true,
                            updated_at = clock_timestamp()
                        WHERE user_id = ? AND NOT cleared""")
                .param(user)
                .update());
    }

    @Override
    public Optional<Limits> limitsOf(long user) {
        return reaching(() -> jdbc.sql("""
                        SELECT tokens_per_day, tokens_per_month, requests_per_minute FROM user_limits WHERE user_id = ? AND NOT cleared""")
                .param(user)
                .query((rs, row) -> limits(rs))
                .optional());
    }

    @Override
    public LimitsChanges limitsChangedSince(Instant since) {
        // the time of reading comes with the rows, from the same statement: the next read asks from there
        return reaching(() -> {
            Map<Long, Limits> changed = new HashMap<>();
            Set<Long> cleared = new HashSet<>();
            Instant[] readAt = new Instant[1];
            jdbc.sql("""
                            SELECT t.read_at, l.user_id, l.tokens_per_day, l.tokens_per_month, l.requests_per_minute, l.cleared
                            FROM (SELECT statement_timestamp() AS read_at) t
                            LEFT JOIN user_limits l ON l.updated_at >= ?""")
                    .param(at(since == null ? Instant.EPOCH : since))
                    .query(rs -> {
                        readAt[0] = rs.getObject("read_at", OffsetDateTime.class).toInstant();
                        long user = rs.getLong("user_id");
                        if (!rs.wasNull()) {
                            if (rs.getBoolean("cleared")) {
                                cleared.add(user);
                            } else {
                                changed.put(user, limits(rs));
                            }
                        }
                    });
            return new LimitsChanges(changed, cleared, readAt[0]);
        });
    }

    @Override
    public List<Grant> lease(Operation operation, List<Ask> asks) {
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
        return timed(client -> client.sql(LEASE)
                .params(operation.instance().toString(), operation.number(), operation.expiry().toMillis(),
                        users, kinds, starts, limits, needs, wants)
                .query((rs, row) -> new Grant(account(rs), rs.getLong("granted"), rs.getLong("taken"), rs.getLong("consumed"),
                        rs.getBoolean("lost")))
                .list());
    }

    @Override
    public List<Kept> giveBack(Operation operation, List<GiveBack> giveBacks) {
        if (giveBacks.isEmpty()) {
            return List.of();
        }
        int size = giveBacks.size();
        var users = new long[size];
        var kinds = new String[size];
        var starts = new long[size];
        var released = new long[size];
        var consumed = new long[size];
        for (int i = 0; i < size; i++) {
            GiveBack back = giveBacks.get(i);
            users[i] = back.account().user();
            kinds[i] = kind(back.account().window());
            starts[i] = micros(back.account().start());
            released[i] = back.released();
            consumed[i] = back.consumed();
        }
        return timed(client -> client.sql(GIVE_BACK)
                .params(operation.instance().toString(), operation.number(), operation.expiry().toMillis(),
                        users, kinds, starts, released, consumed)
                .query((rs, row) -> new Kept(account(rs), rs.getLong("held"), rs.getBoolean("lost")))
                .list());
    }

    @Override
    public List<Resolution> resolve(Operation operation, List<Account> accounts) {
        if (accounts.isEmpty()) {
            return List.of();
        }
        var users = accounts.stream().mapToLong(Account::user).toArray();
        var kinds = accounts.stream().map(account -> kind(account.window())).toArray(String[]::new);
        var starts = accounts.stream().mapToLong(account -> micros(account.start())).toArray();
        return timed(client -> client.sql(RESOLVE)
                .params(operation.instance().toString(), operation.number(), users, kinds, starts)
                .query((rs, row) -> new Resolution(account(rs), rs.getBoolean("applied"), rs.getLong("granted"),
                        rs.getBoolean("lost")))
                .list());
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
        return window.word();
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

    /** A statement whose answer is awaited at most the statement timeout (it may commit after that all the same). */
    private <T> T timed(Function<JdbcClient, T> statement) {
        return reaching(() -> bounded.run(statement));
    }

    private static <T> T reaching(Supplier<T> query) {
        try {
            return query.get();
        } catch (DataAccessException away) {
            throw new BudgetStoreUnavailableException(
                    "the budget store is unavailable: " + away.getMostSpecificCause().getClass().getSimpleName(), away,
                    away instanceof CannotGetJdbcConnectionException); // no connection: no statement was sent
        }
    }
}
