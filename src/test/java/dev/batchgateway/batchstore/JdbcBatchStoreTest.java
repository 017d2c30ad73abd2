package dev.batchgateway.batchstore;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.batch.BatchJob;
import dev.batchgateway.batch.BatchStatus;
import dev.batchgateway.batch.BatchStore;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.jdbc.test.autoconfigure.AutoConfigureTestDatabase;
import org.springframework.boot.jdbc.test.autoconfigure.JdbcTest;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Propagation;
import org.springframework.transaction.annotation.Transactional;
import org.springframework.transaction.support.TransactionTemplate;

/** The batch store's statements on a real PostgreSQL, where the Batch API tests through the gateway cannot reach. */
@JdbcTest
@AutoConfigureTestDatabase(replace = AutoConfigureTestDatabase.Replace.NONE)
@Transactional(propagation = Propagation.NOT_SUPPORTED)
class JdbcBatchStoreTest {

    private static final String CHAT = "/v1/chat/completions";

    @DynamicPropertySource
    static void database(DynamicPropertyRegistry registry) {
        TestDatabase.register(registry);
    }

    @TestConfiguration
    static class Store {
        @Bean
        JdbcBatchStore jdbcBatchStore(JdbcClient jdbc, TransactionTemplate transactions) {
            return new JdbcBatchStore(jdbc, transactions);
        }
    }

    @Autowired
    JdbcBatchStore store;

    @Autowired
    JdbcClient jdbc;

    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
    private final UUID instance = UUID.randomUUID();

    @Test
    void aBatchPastItsWindowIsExpiredOnlyOnceItsLinesInFlightHaveEnded() {
        String id = "batch_" + UUID.randomUUID().toString().replace("-", "");
        store.create(id, user, UUID.randomUUID(), CHAT, "file-x", "24h", null, Duration.ofMillis(1));
        store.addLines(id, List.of(new BatchStore.NewLine(1, "running", CHAT, "{}"), new BatchStore.NewLine(2, "waiting", CHAT, "{}")));
        store.start(id, 2);
        // line 1 is with a runner (as claim() leaves it), line 2 nobody has taken; the window (1 ms) has passed
        jdbc.sql("UPDATE batch_line SET lease_owner = ?, lease_until = now() + interval '1 minute' WHERE batch_id = ? AND line = 1")
                .params(instance, id).update();
        jdbc.sql("SELECT pg_sleep(0.01)").query().listOfRows(); // the database's clock past expires_at, not ours

        store.finishDue(instance, Duration.ofSeconds(30), Duration.ofDays(30));

        BatchJob running = store.find(user, id).orElseThrow();
        assertThat(running.status()).as("a line is still in flight").isEqualTo(BatchStatus.IN_PROGRESS);
        assertThat(running.expiredAt()).as("expired_at of a batch still in progress").isNull();
        assertThat(running.requestCounts().failed()).as("the line nobody took failed with batch_expired").isEqualTo(1);

        store.finish(List.of(new BatchStore.Finished(id, 1, true, "{\"custom_id\":\"running\"}")));
        store.finishDue(instance, Duration.ofSeconds(30), Duration.ofDays(30));

        BatchJob expired = store.find(user, id).orElseThrow();
        assertThat(expired.status()).isEqualTo(BatchStatus.EXPIRED);
        assertThat(expired.expiredAt()).isNotNull();
        assertThat(expired.completedAt()).isNull();
        assertThat(expired.requestCounts()).isEqualTo(new BatchJob.RequestCounts(2, 1, 1));
    }
}
