package dev.batchgateway.usage;

import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageRepository;
import dev.batchgateway.completion.UsageWriteException;
import dev.batchgateway.jdbc.BoundedStatements;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import org.springframework.dao.DataAccessException;
import org.springframework.dao.DataIntegrityViolationException;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Repository;

/**
 * Appends usage rows to {@code token_usage}, all rows of a call in one INSERT statement (whose trigger adds rows of
 * days already rolled up, if any, to {@code usage_daily}, V6). The rows travel as eight arrays, one per column: the
 * statement's text is the same for any number of rows, so PostgreSQL prepares it once, and no row count comes near
 * the protocol's limit of 65,535 parameters.
 */
@Repository
class JdbcUsageRepository implements UsageRepository {

    private static final String INSERT = """
            INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at, outcome)
            SELECT request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model,
                   timestamptz 'epoch' + served_at_micros * interval '1 microsecond', outcome
            FROM unnest(?::uuid[], ?::bigint[], ?::int[], ?::int[], ?::int[], ?::text[], ?::bigint[], ?::text[])
                 AS row (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, served_at_micros, outcome)
            ON CONFLICT (request_id, created_at) DO NOTHING
            """;

    private final BoundedStatements bounded;

    /**
     * @param writeTimeout how long a write waits for PostgreSQL's answer: answers wait for their rows, so a database
     *     that stopped answering sends them to the journal after this, not after the pool's 30 s socket timeout
     */
    JdbcUsageRepository(JdbcTemplate template, @Value("${gateway.usage.write-timeout:2s}") Duration writeTimeout) {
        this.bounded = new BoundedStatements(template, writeTimeout);
    }

    @Override
    public void record(List<UsageRecord> rows) {
        if (rows.isEmpty()) {
            return;
        }
        int size = rows.size();
        var requestIds = new String[size];
        var userIds = new long[size];
        var promptTokens = new int[size];
        var completionTokens = new int[size];
        var totalTokens = new int[size];
        var models = new String[size];
        var servedAtMicros = new long[size];
        var outcomes = new String[size];
        for (int i = 0; i < size; i++) {
            UsageRecord row = rows.get(i);
            requestIds[i] = row.requestId().toString();
            userIds[i] = row.userId();
            promptTokens[i] = row.usage().promptTokens();
            completionTokens[i] = row.usage().completionTokens();
            totalTokens[i] = row.usage().totalTokens();
            models[i] = row.model();
            servedAtMicros[i] = ChronoUnit.MICROS.between(Instant.EPOCH, row.servedAt());
            outcomes[i] = row.outcome().word();
        }
        try {
            // timed out, it may still commit: harmless, the journal's replay skips request ids the table has
            bounded.run(jdbc -> jdbc.sql(INSERT)
                    .params(requestIds, userIds, promptTokens, completionTokens, totalTokens, models, servedAtMicros, outcomes)
                    .update());
        } catch (DataIntegrityViolationException refused) {
            throw new UsageWriteException.Permanent(reason(refused), refused);
        } catch (DataAccessException away) {
            // anything else (no connection, timeout, even a missing table) may heal: keep the rows and retry
            throw new UsageWriteException.Recoverable(reason(away), away);
        }
    }

    private static String reason(DataAccessException failure) {
        Throwable cause = failure.getMostSpecificCause();
        return cause.getMessage() != null ? cause.getMessage() : cause.getClass().getName();
    }
}
