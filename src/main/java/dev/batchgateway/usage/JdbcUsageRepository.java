package dev.batchgateway.usage;

import dev.batchgateway.completion.BudgetCharge;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageRepository;
import dev.batchgateway.completion.UsageWriteException;
import dev.batchgateway.jdbc.BoundedStatements;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.function.Supplier;
import org.springframework.jdbc.CannotGetJdbcConnectionException;
import org.springframework.dao.DataAccessException;
import org.springframework.dao.DataIntegrityViolationException;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Repository;

/**
 * Appends usage rows to {@code token_usage}, all rows of a call in one INSERT statement (whose trigger adds rows of
 * days already rolled up, if any, to {@code usage_daily}, V6), and in the same statement charges the rows it inserted
 * to their users' budget windows ({@code budget_charge}, V8): a row and its charge commit together or not at all, and
 * a row written twice is inserted and charged once. The rows travel as arrays, one per column: the statement's text is
 * the same for any number of rows, so PostgreSQL prepares it once, and no row count comes near the protocol's limit of
 * 65,535 parameters.
 */
@Repository
class JdbcUsageRepository implements UsageRepository {

    private static final String INSERT = """
            INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at, outcome,
                                     service_tier)
            SELECT request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model,
                   timestamptz 'epoch' + served_at_micros * interval '1 microsecond', outcome, service_tier
            FROM unnest(?::uuid[], ?::bigint[], ?::int[], ?::int[], ?::int[], ?::text[], ?::bigint[], ?::text[], ?::text[])
                 AS row (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, served_at_micros, outcome,
                         service_tier)
            ON CONFLICT (request_id, created_at) DO NOTHING
            """;

    /** The same insert for rows of limited users: it charges the rows it inserted, in the same statement. */
    private static final String INSERT_AND_CHARGE = "WITH written AS (" + INSERT + " RETURNING request_id) " + """
            SELECT budget_charge(?::uuid[], ?::uuid[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::bigint[],
                                 ARRAY(SELECT request_id FROM written))
            """;

    /**
     * The same for rows whose answers wait for them: a row of a limited user is inserted and charged only while every
     * hold it charges is live (V20); the statement answers the rows it refused.
     */
    private static final String INSERT_ON_LIVE_HOLDS = """
            SELECT refused::text FROM usage_record_on_live_holds(?::uuid[], ?::bigint[], ?::int[], ?::int[], ?::int[],
                   ?::text[], ?::bigint[], ?::text[], ?::text[], ?::uuid[], ?::uuid[], ?::bigint[], ?::bigint[], ?::text[],
                   ?::bigint[], ?::bigint[]) AS refused
            """;

    private final BoundedStatements bounded;

    /**
     * @param writeTimeout how long a write waits for PostgreSQL's answer: answers wait for their rows, so a database
     *     that stopped answering sends them to the journal after this, not after the pool's 30 s socket timeout
     */
    JdbcUsageRepository(JdbcTemplate template, Duration writeTimeout) {
        this.bounded = new BoundedStatements(template, writeTimeout);
    }

    @Autowired
    JdbcUsageRepository(JdbcTemplate template, UsageSettings settings) {
        this(template, settings.writeTimeout());
    }

    @Override
    public void record(List<UsageRecord> rows) {
        if (rows.isEmpty()) {
            return;
        }
        Columns columns = Columns.of(rows);
        Charges charges = Charges.of(rows);
        writing(() -> {
            // timed out, it may still commit: harmless, the journal's replay skips request ids the table has
            if (charges.requestIds.length == 0) {
                return bounded.run(jdbc -> jdbc.sql(INSERT).params(columns.params()).update());
            }
            return bounded.run(jdbc -> jdbc.sql(INSERT_AND_CHARGE).params(concat(columns.params(), charges.params()))
                    .query(Long.class).single());
        });
    }

    @Override
    public Set<UUID> recordOnLiveHolds(List<UsageRecord> rows) {
        Charges charges = Charges.of(rows);
        if (charges.requestIds.length == 0) {
            record(rows);
            return Set.of();
        }
        Columns columns = Columns.of(rows);
        List<String> refused = writing(() -> bounded.run(jdbc -> jdbc.sql(INSERT_ON_LIVE_HOLDS)
                .params(concat(columns.params(), charges.params())).query(String.class).list()));
        Set<UUID> ids = new HashSet<>();
        refused.forEach(id -> ids.add(UUID.fromString(id)));
        return ids;
    }

    private static <T> T writing(Supplier<T> write) {
        try {
            return write.get();
        } catch (DataIntegrityViolationException refused) {
            throw new UsageWriteException.Permanent(reason(refused), refused);
        } catch (CannotGetJdbcConnectionException noConnection) {
            throw new UsageWriteException.Recoverable(reason(noConnection), noConnection); // nothing was sent
        } catch (DataAccessException away) {
            // anything else (a timeout, a dropped connection, even a missing table) may heal: keep the rows and retry;
            // the statement may have reached PostgreSQL and commit there all the same
            throw new UsageWriteException.Recoverable(reason(away), away, true);
        }
    }

    private static Object[] concat(Object[] first, Object[] second) {
        Object[] both = Arrays.copyOf(first, first.length + second.length);
        System.arraycopy(second, 0, both, first.length, second.length);
        return both;
    }

    /** The rows, one array per column of {@code token_usage}. */
    private record Columns(String[] requestIds, long[] userIds, int[] promptTokens, int[] completionTokens, int[] totalTokens,
            String[] models, long[] servedAtMicros, String[] outcomes, String[] serviceTiers) {

        static Columns of(List<UsageRecord> rows) {
            int size = rows.size();
            var columns = new Columns(new String[size], new long[size], new int[size], new int[size], new int[size],
                    new String[size], new long[size], new String[size], new String[size]);
            for (int i = 0; i < size; i++) {
                UsageRecord row = rows.get(i);
                columns.requestIds[i] = row.requestId().toString();
                columns.userIds[i] = row.userId();
                columns.promptTokens[i] = row.usage().promptTokens();
                columns.completionTokens[i] = row.usage().completionTokens();
                columns.totalTokens[i] = row.usage().totalTokens();
                columns.models[i] = row.model();
                columns.servedAtMicros[i] = ChronoUnit.MICROS.between(Instant.EPOCH, row.servedAt());
                columns.outcomes[i] = row.outcome().word();
                columns.serviceTiers[i] = row.serviceTier().wireName();
            }
            return columns;
        }

        Object[] params() {
            return new Object[] {requestIds, userIds, promptTokens, completionTokens, totalTokens, models, servedAtMicros,
                outcomes, serviceTiers};
        }
    }

    /** The rows' budget charges, one array per column of {@code budget_charge}. */
    private record Charges(String[] requestIds, String[] holders, long[] holdsSince, long[] userIds, String[] windows,
            long[] windowStartMicros, long[] amounts) {

        static Charges of(List<UsageRecord> rows) {
            int size = rows.stream().mapToInt(row -> row.charges().size()).sum();
            var charges = new Charges(new String[size], new String[size], new long[size], new long[size], new String[size],
                    new long[size], new long[size]);
            int i = 0;
            for (UsageRecord row : rows) {
                for (BudgetCharge charge : row.charges()) {
                    charges.requestIds[i] = row.requestId().toString();
                    charges.holders[i] = charge.holder().toString();
                    charges.holdsSince[i] = charge.holdSince();
                    charges.userIds[i] = charge.account();
                    charges.windows[i] = charge.window();
                    charges.windowStartMicros[i] = ChronoUnit.MICROS.between(Instant.EPOCH, charge.windowStart());
                    charges.amounts[i] = charge.amount();
                    i++;
                }
            }
            return charges;
        }

        Object[] params() {
            return new Object[] {requestIds, holders, holdsSince, userIds, windows, windowStartMicros, amounts};
        }
    }

    private static String reason(DataAccessException failure) {
        Throwable cause = failure.getMostSpecificCause();
        return cause.getMessage() != null ? cause.getMessage() : cause.getClass().getName();
    }
}
