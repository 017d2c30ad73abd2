package dev.batchgateway.audit;

import dev.batchgateway.identity.AdminAction;
import dev.batchgateway.identity.AuditTrail;
import dev.batchgateway.identity.AuditUnavailableException;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.TransactionException;
import org.springframework.transaction.support.TransactionTemplate;
import tools.jackson.databind.json.JsonMapper;

/**
 * The audit log in the {@code admin_audit} table, one row per action, written in a transaction around the change: the
 * key and limit stores write through the same data source, so their statements join it, and a change is never kept
 * without its row, nor a row without its change. Once committed, the action is logged, one line.
 */
@Repository
class JdbcAuditTrail implements AuditTrail {

    private static final Logger LOG = LoggerFactory.getLogger(JdbcAuditTrail.class);

    private final JdbcClient jdbc;
    private final TransactionTemplate transactions;
    private final JsonMapper json = JsonMapper.builder().build();

    JdbcAuditTrail(JdbcClient jdbc, PlatformTransactionManager transactionManager) {
        this.jdbc = jdbc;
        this.transactions = new TransactionTemplate(transactionManager);
    }

    @Override
    public <T> T record(Supplier<Recorded<T>> change) {
        Kept<T> kept;
        try {
            kept = transactions.execute(status -> {
                Recorded<T> made = change.get();
                return new Kept<>(made, made.entry().map(this::insert).orElse(null));
            });
        } catch (TransactionException notCommitted) {
            // the transaction could not begin (no connection) or its commit failed: the change is not known to be kept
            throw unavailable(notCommitted);
        }
        kept.recorded().entry().ifPresent(entry -> log(entry, kept.id()));
        return kept.recorded().result();
    }

    /** What a change gave, and the id of its row (null: nothing recorded). */
    private record Kept<T>(Recorded<T> recorded, Long id) {}

    private long insert(AdminAction entry) {
        try {
            return jdbc.sql("""
                            INSERT INTO admin_audit (admin_token_id, action, target, change)
                            VALUES (?, ?, ?, ?::jsonb)
                            RETURNING id""")
                    .params(entry.adminTokenId(), entry.kind().word(), entry.target(), json.writeValueAsString(entry.change()))
                    .query(Long.class)
                    .single();
        } catch (DataAccessException notKept) {
            throw unavailable(notKept); // thrown inside the transaction: the change is rolled back with it
        }
    }

    private void log(AdminAction entry, long id) {
        String change = json.writeValueAsString(entry.change());
        LOG.atInfo()
                .setMessage("admin action {} on {} by admin token {}: {}")
                .addArgument(entry.kind().word())
                .addArgument(entry.target())
                .addArgument(entry.adminTokenId())
                .addArgument(change)
                .addKeyValue("audit_id", id)
                .addKeyValue("admin_token_id", entry.adminTokenId())
                .addKeyValue("action", entry.kind().word())
                .addKeyValue("target", entry.target())
                .addKeyValue("change", change)
                .log();
    }

    private static AuditUnavailableException unavailable(RuntimeException cause) {
        return new AuditUnavailableException("the audit log is unavailable (PostgreSQL), so the change was not made; "
                + "try again later", cause);
    }
}
