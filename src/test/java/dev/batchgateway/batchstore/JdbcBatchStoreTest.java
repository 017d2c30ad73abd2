package dev.batchgateway.batchstore;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.batch.BatchJob;
import dev.batchgateway.batch.BatchStatus;
import dev.batchgateway.batch.BatchStore;
import dev.batchgateway.batch.LineError;
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

    @Test
    void aBatchIsUnfinishedFromItsCreationUntilItEnds() {
        String id = "batch_" + UUID.randomUUID().toString().replace("-", "");
        store.create(id, user, UUID.randomUUID(), CHAT, "file-x", "24h", null, Duration.ofDays(1));

        assertThat(store.anyUnfinished()).as("a batch being validated").isTrue();

        store.fail(id, List.of(new LineError("empty_file", "The input file holds no requests", "input_file_id", null)));

        // other tests' batches share the database: the answer must agree with every status that is not an end
        boolean othersUnfinished = jdbc.sql("""
                SELECT count(*) FROM batch WHERE status NOT IN ('completed', 'expired', 'cancelled', 'failed')
                """).query(Long.class).single() > 0;
        assertThat(store.find(user, id).orElseThrow().status()).isEqualTo(BatchStatus.FAILED);
        assertThat(store.anyUnfinished()).isEqualTo(othersUnfinished);
    }

    @Test
    void aBatchWhoseLinesHaveAllEndedIsFinalizingBeforeItsFilesAreWrittenThenCompleted() {
        // Given a running batch of two lines in its window, one of them ended
        String id = runningBatch();
        store.finish(List.of(new BatchStore.Finished(id, 1, true, "{\"custom_id\":\"a\"}")));
        store.startFinalizing();
        assertThat(store.find(user, id).orElseThrow().status()).as("a line is still queued").isEqualTo(BatchStatus.IN_PROGRESS);

        // When the other line ends and the first step runs (its files not written yet)
        store.finish(List.of(new BatchStore.Finished(id, 2, false, "{\"custom_id\":\"b\"}")));
        store.startFinalizing();

        // Then the batch is finalizing, with its finalizing_at and no file, and a cancel leaves it as it is
        BatchJob finalizing = store.find(user, id).orElseThrow();
        assertThat(finalizing.status()).isEqualTo(BatchStatus.FINALIZING);
        assertThat(finalizing.finalizingAt()).isNotNull();
        assertThat(finalizing.completedAt()).isNull();
        assertThat(finalizing.outputFileId()).isNull();
        assertThat(finalizing.errorFileId()).isNull();
        assertThat(filesOf(id)).as("files written for a finalizing batch").isZero();
        assertThat(finalizing.requestCounts()).isEqualTo(new BatchJob.RequestCounts(2, 1, 1));
        BatchJob cancelAsked = store.cancel(user, id).orElseThrow();
        assertThat(cancelAsked.status()).as("a finalizing batch is not cancelled").isEqualTo(BatchStatus.FINALIZING);
        assertThat(cancelAsked.cancellingAt()).isNull();

        // And when the batches due are ended
        store.finishDue(instance, Duration.ofSeconds(30), Duration.ofDays(30));

        // Then it is completed with both files, finalized no later than completed
        BatchJob completed = store.find(user, id).orElseThrow();
        assertThat(completed.status()).isEqualTo(BatchStatus.COMPLETED);
        assertThat(completed.outputFileId()).isNotNull();
        assertThat(completed.errorFileId()).isNotNull();
        assertThat(completed.finalizingAt()).as("finalizing_at, kept from the first step").isEqualTo(finalizing.finalizingAt());
        assertThat(completed.finalizingAt()).isBeforeOrEqualTo(completed.completedAt());
        assertThat(completed.requestCounts()).isEqualTo(new BatchJob.RequestCounts(2, 1, 1));
    }

    @Test
    void aBatchLeftFinalizingByAnInstanceThatDiedIsCompletedOnceByTheNextInstance() {
        // Given a batch whose lines have all ended, made finalizing by an instance that died before writing its files
        String id = runningBatch();
        store.finish(List.of(new BatchStore.Finished(id, 1, true, "{\"custom_id\":\"a\"}"),
                new BatchStore.Finished(id, 2, true, "{\"custom_id\":\"b\"}")));
        store.startFinalizing();
        assertThat(store.find(user, id).orElseThrow().status()).isEqualTo(BatchStatus.FINALIZING);

        // When another instance ends the batches due, and again at its next sweep
        UUID other = UUID.randomUUID();
        store.finishDue(other, Duration.ofSeconds(30), Duration.ofDays(30));
        BatchJob completed = store.find(user, id).orElseThrow();
        store.finishDue(other, Duration.ofSeconds(30), Duration.ofDays(30));

        // Then the batch is completed, its output file of both lines written once
        assertThat(completed.status()).isEqualTo(BatchStatus.COMPLETED);
        assertThat(completed.errorFileId()).as("no line failed").isNull();
        assertThat(jdbc.sql("SELECT lines FROM batch_file WHERE id = ?").params(completed.outputFileId()).query(Integer.class)
                .single()).isEqualTo(2);
        assertThat(filesOf(id)).as("files of the batch after two sweeps").isEqualTo(1);
        assertThat(store.find(user, id).orElseThrow()).as("the batch after the second sweep").isEqualTo(completed);
    }

    /** A running batch (in its 24 h window) of two queued lines, a and b. */
    private String runningBatch() {
        String id = "batch_" + UUID.randomUUID().toString().replace("-", "");
        store.create(id, user, UUID.randomUUID(), CHAT, "file-x", "24h", null, Duration.ofHours(24));
        store.addLines(id, List.of(new BatchStore.NewLine(1, "a", CHAT, "{}"), new BatchStore.NewLine(2, "b", CHAT, "{}")));
        store.start(id, 2);
        return id;
    }

    /** The output and error files written for the batch. */
    private long filesOf(String batchId) {
        return jdbc.sql("SELECT count(*) FROM batch_file WHERE filename IN (?, ?)")
                .params(batchId + "_output.jsonl", batchId + "_error.jsonl").query(Long.class).single();
    }
}
