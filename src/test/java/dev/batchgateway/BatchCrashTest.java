package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.batches.Batch;
import com.openai.models.batches.BatchCreateParams;
import com.openai.models.files.FileCreateParams;
import com.openai.models.files.FilePurpose;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A batch survives its instance: a gateway killed with SIGKILL a third of the way through a 2,000-line batch leaves
 * its leased lines to a second instance on the same database, which finishes the batch with every line answered once
 * and billed once. The gateways run as child JVMs so that the kill is real.
 */
class BatchCrashTest {

    private static final int LINES = 2_000;
    /** A short lease, so that the take-over comes within seconds here (GATEWAY_BATCH_LEASE, 30 s by default). */
    private static final Duration LEASE = Duration.ofSeconds(3);
    /** The second instance's start, the lease, and the rest of the lines, on a loaded two-core machine. */
    private static final Duration FINISH = Duration.ofSeconds(120);
    /** Few lines in flight and a worker of 50 ms a batch: the batch takes seconds, so the kill finds it under way. */
    private static final String[] SETTINGS = {"--gateway.batch-api.lease=" + LEASE.toSeconds() + "s",
            "--gateway.batch-api.lines-in-flight=16", "--gateway.simulated.latency=50ms"};

    @TempDir
    Path journalDirectory;

    @TempDir
    Path logs;

    @TempDir
    Path files;

    private final JsonMapper json = JsonMapper.builder().build();
    private final long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
    private final List<ChildGateway> children = new ArrayList<>();

    @AfterEach
    void stopChildren() throws InterruptedException {
        for (ChildGateway child : children) {
            child.close();
        }
    }

    @Test
    void aBatchWhoseInstanceIsKilledIsFinishedByAnotherWithEveryLineAnsweredAndBilledOnce() throws Exception {
        // Given a gateway in a process of its own running a batch of 2,000 lines
        var first = start("first");
        OpenAIClient firstClient = client(first);
        Path input = files.resolve("requests.jsonl");
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < LINES; i++) {
            lines.add(json.writeValueAsString(Map.of("custom_id", "line-" + i, "method", "POST", "url", "/v1/completions",
                    "body", Map.of("model", "simulated", "prompt", "crash test line " + i, "max_tokens", 8))));
        }
        Files.writeString(input, String.join("\n", lines));
        String fileId = firstClient.files().create(FileCreateParams.builder().file(input).purpose(FilePurpose.BATCH).build()).id();
        String batchId = firstClient.batches().create(BatchCreateParams.builder().inputFileId(fileId)
                .endpoint(BatchCreateParams.Endpoint.V1_COMPLETIONS).completionWindow(BatchCreateParams.CompletionWindow._24H)
                .build()).id();

        var database = TestDatabase.get();
        var store = new SingleConnectionDataSource(database.url(), database.username(), database.password(), true);
        try {
            var jdbc = JdbcClient.create(store);

            // When it is killed with SIGKILL once about a third of the lines have ended
            ChildGateway.awaitCondition("a third of the lines ended before the kill", () -> ended(jdbc, batchId) >= LINES / 3);
            first.kill();
            long endedAtKill = ended(jdbc, batchId);
            // lines billed whose end the dead instance had not recorded yet: they run again, and must not bill again
            long billedNotEnded = jdbc.sql("""
                    SELECT count(*) FROM token_usage t JOIN batch_line l ON l.request_id = t.request_id
                    WHERE l.batch_id = ? AND l.state = 'queued'
                    """).params(batchId).query(Long.class).single();
            assertThat(endedAtKill).as("lines ended when the first instance was killed").isLessThan(LINES);

            // And a second instance starts on the same database
            var second = start("second");
            OpenAIClient secondClient = client(second);
            long started = System.nanoTime();
            ChildGateway.awaitCondition(() -> "the batch completed by the second instance (" + ended(jdbc, batchId) + " lines ended)",
                    FINISH, () -> secondClient.batches().retrieve(batchId).status().equals(Batch.Status.COMPLETED));
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            Batch done = secondClient.batches().retrieve(batchId);

            // Then every custom_id is in the output or error file exactly once
            List<JsonNode> answered = download(secondClient, done.outputFileId().orElseThrow());
            List<JsonNode> failed = done.errorFileId().isPresent() ? download(secondClient, done.errorFileId().get()) : List.of();
            List<String> customIds = new ArrayList<>();
            answered.forEach(line -> customIds.add(line.get("custom_id").asString()));
            failed.forEach(line -> customIds.add(line.get("custom_id").asString()));
            assertThat(customIds).as("custom_ids across the output and error files").hasSize(LINES).doesNotHaveDuplicates();
            assertThat(failed).as("lines that failed (the worker never fails)").isEmpty();
            assertThat(done.requestCounts().orElseThrow().completed()).isEqualTo(LINES);

            // And the usage rows are exactly the completed lines, no request id twice, each the one its output line names
            List<UUID> rows = jdbc.sql("SELECT request_id FROM token_usage WHERE user_id = ?").params(user).query(UUID.class).list();
            assertThat(rows).as("usage rows, of %d lines (%d ended before the kill, %d more billed but not ended)", LINES, endedAtKill,
                            billedNotEnded)
                    .hasSize(LINES).doesNotHaveDuplicates();
            Set<UUID> named = new HashSet<>();
            answered.forEach(line -> named.add(UUID.fromString(line.get("response").get("request_id").asString())));
            assertThat(new HashSet<>(rows)).isEqualTo(named);
            assertThat(took).as("the second instance finished in %d s", took.toSeconds()).isLessThan(FINISH);
        } finally {
            store.destroy();
        }
    }

    private static long ended(JdbcClient jdbc, String batchId) {
        return jdbc.sql("SELECT count(*) FROM batch_line WHERE batch_id = ? AND state <> 'queued'").params(batchId)
                .query(Long.class).single();
    }

    private ChildGateway start(String name) throws InterruptedException {
        var gateway = ChildGateway.start(name, logs, journalDirectory, SETTINGS);
        children.add(gateway);
        return gateway;
    }

    private OpenAIClient client(ChildGateway gateway) {
        return OpenAIOkHttpClient.builder().baseUrl(gateway.client().uri("/v1").toString()).apiKey(gateway.client().key(user))
                .maxRetries(0).build();
    }

    private static List<JsonNode> download(OpenAIClient client, String fileId) throws IOException {
        var json = JsonMapper.builder().build();
        try (var response = client.files().content(fileId); InputStream body = response.body()) {
            return new String(body.readAllBytes(), StandardCharsets.UTF_8).lines().filter(line -> !line.isBlank())
                    .map(json::readTree).toList();
        }
    }
}
