package dev.batchgateway.audit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.identity.AdminAction;
import dev.batchgateway.identity.AuditTrail.Recorded;
import dev.batchgateway.identity.AuditUnavailableException;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.jdbc.test.autoconfigure.AutoConfigureTestDatabase;
import org.springframework.boot.jdbc.test.autoconfigure.JdbcTest;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Propagation;
import org.springframework.transaction.annotation.Transactional;

/**
 * The audit log's transaction on a real PostgreSQL: a change written through the same data source and its entry are
 * kept both or neither, and the log line comes only once both are committed.
 */
@JdbcTest
@AutoConfigureTestDatabase(replace = AutoConfigureTestDatabase.Replace.NONE)
@Transactional(propagation = Propagation.NOT_SUPPORTED)
@Import(JdbcAuditTrail.class)
@ExtendWith(OutputCaptureExtension.class)
class JdbcAuditTrailTest {

    @DynamicPropertySource
    static void database(DynamicPropertyRegistry registry) {
        TestDatabase.register(registry);
    }

    @Autowired
    JdbcAuditTrail audit;

    @Autowired
    JdbcClient jdbc;

    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
    private final String target = "users/" + user + "/limits";

    @Test
    void aChangeAndItsEntryAreKeptTogetherThenLogged(CapturedOutput output) {
        // When a change is recorded
        String result = audit.record(() -> {
            setLimits();
            return Recorded.of("done", entry(target));
        });

        // Then the change, its one entry and its one log line are there
        assertThat(result).isEqualTo("done");
        assertThat(limitRows()).isOne();
        assertThat(entries(target)).isOne();
        assertThat(output.getAll().lines().filter(line -> line.contains("admin action limits.set on " + target + " by admin token 0badc0de")))
                .hasSize(1);
    }

    @Test
    void anEntryThatCannotBeKeptUndoesItsChange(CapturedOutput output) {
        // When the entry of a change cannot be written (PostgreSQL text holds no NUL character)
        String unwritable = target + "\u0000";
        assertThatThrownBy(() -> audit.record(() -> {
            setLimits();
            return Recorded.of("done", entry(unwritable));
        })).isInstanceOf(AuditUnavailableException.class).hasMessageContaining("the change was not made");

        // Then the change is undone with it, and nothing is logged
        assertThat(limitRows()).isZero();
        assertThat(output.getAll()).doesNotContain("admin action limits.set on " + target);
    }

    @Test
    void aChangeThatFailsLeavesNoEntryAndItsOwnFailure() {
        var failure = new IllegalStateException("the change failed half-way");

        assertThatThrownBy(() -> audit.record(() -> {
            setLimits();
            throw failure;
        })).isSameAs(failure);

        assertThat(limitRows()).isZero();
        assertThat(entries(target)).isZero();
    }

    @Test
    void aChangeThatDidNothingLeavesNoEntry() {
        assertThat(audit.record(() -> Recorded.nothing(UUID.randomUUID()))).isNotNull();

        assertThat(jdbc.sql("SELECT count(*) FROM admin_audit WHERE at > clock_timestamp() - interval '1 minute' AND target = ?")
                .param(target).query(Long.class).single()).isZero();
    }

    private void setLimits() {
        jdbc.sql("INSERT INTO user_limits (user_id, tokens_per_day) VALUES (?, 100)").param(user).update();
    }

    private long limitRows() {
        return jdbc.sql("SELECT count(*) FROM user_limits WHERE user_id = ?").param(user).query(Long.class).single();
    }

    private long entries(String target) {
        return jdbc.sql("SELECT count(*) FROM admin_audit WHERE target = ?").param(target).query(Long.class).single();
    }

    private static AdminAction entry(String target) {
        return new AdminAction("0badc0de", AdminAction.Kind.LIMITS_SET, target, Map.of("after", Map.of("tokens_per_day", 100)));
    }
}
