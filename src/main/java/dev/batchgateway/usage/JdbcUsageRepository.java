package dev.batchgateway.usage;

import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageRepository;
import dev.batchgateway.completion.UsageWriteException;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.springframework.dao.DataAccessException;
import org.springframework.dao.DataIntegrityViolationException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/** Appends usage rows to {@code token_usage}, all rows of a call in one INSERT statement. */
@Repository
class JdbcUsageRepository implements UsageRepository {

    private static final String INSERT = """
            INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at)
            VALUES %s
            ON CONFLICT (request_id) DO NOTHING
            """;
    private static final String ROW = "(?, ?, ?, ?, ?, ?, ?)";

    private final JdbcClient jdbc;

    JdbcUsageRepository(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    @Override
    public void record(List<UsageRecord> rows) {
        if (rows.isEmpty()) {
            return;
        }
        List<Object> values = new ArrayList<>(rows.size() * 7);
        for (UsageRecord row : rows) {
            values.add(row.requestId());
            values.add(row.userId());
            values.add(row.usage().promptTokens());
            values.add(row.usage().completionTokens());
            values.add(row.usage().totalTokens());
            values.add(row.model());
            values.add(Timestamp.from(row.servedAt()));
        }
        String sql = INSERT.formatted(String.join(", ", Collections.nCopies(rows.size(), ROW)));
        try {
            jdbc.sql(sql).params(values).update();
        } catch (DataIntegrityViolationException refused) {
            throw new UsageWriteException.Permanent(refused.getMostSpecificCause().getMessage(), refused);
        } catch (DataAccessException away) {
            // anything else (no connection, timeout, even a missing table) may heal: keep the rows and retry
            throw new UsageWriteException.Recoverable(away.getMostSpecificCause().getMessage(), away);
        }
    }
}
