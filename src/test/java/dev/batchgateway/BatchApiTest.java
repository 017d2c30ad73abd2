package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.models.batches.Batch;
import com.openai.models.batches.BatchCreateParams;
import com.openai.models.files.FileCreateParams;
import com.openai.models.files.FileObject;
import com.openai.models.files.FilePurpose;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The Batch API driven by the official OpenAI Java SDK against the whole gateway in front of the simulated worker
 * (whose answer is the prompt's words reversed, a token a word): upload, create, poll, download; validation; another
 * user's key; a batch whose user is over a limit waits, and is cancelled.
 */
@SimulatedGatewayTest
class BatchApiTest {

    private static final Duration PATIENCE = Duration.ofSeconds(60);

    @LocalServerPort
    int port;

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    @Autowired
    MeterRegistry meters;

    @TempDir
    Path files;

    private final JsonMapper json = JsonMapper.builder().build();
    private long user;
    private OpenAIClient openAi;
    private String model;

    @BeforeEach
    void connect() {
        user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        openAi = client(user);
        model = openAi.models().list().data().getFirst().id();
    }

    private OpenAIClient client(long user) {
        return OpenAIOkHttpClient.builder().baseUrl("http://localhost:" + port + "/v1").apiKey(gateway.key(user)).maxRetries(0).build();
    }

    @Test
    void aFileOfRequestsComesBackAsAFileOfAnswersEachBilledOnceAsFlexInBatchesOfAboutEight() throws Exception {
        // Given a file of 64 completions and one whose body the endpoint refuses (a temperature out of range)
        List<String> lines = new ArrayList<>();
        Map<String, String> prompts = new HashMap<>();
        for (int i = 0; i < 64; i++) {
            String prompt = "line " + i + " says" + " word".repeat(i % 5);
            prompts.put("request-" + i, prompt);
            lines.add(line("request-" + i, "/v1/completions", Map.of("model", model, "prompt", prompt, "max_tokens", 10,
                    "service_tier", "default")));
        }
        lines.add(line("refused", "/v1/completions", Map.of("model", model, "prompt", "too hot", "temperature", 5)));
        DistributionSummary batchSizes = meters.get("gateway.batch.size").summary();
        long batchesBefore = batchSizes.count();
        double promptsBefore = batchSizes.totalAmount();

        // When it is uploaded, run as a batch and polled until it ends
        FileObject input = upload(lines);
        assertThat(input.bytes()).isEqualTo(String.join("\n", lines).getBytes(StandardCharsets.UTF_8).length);
        assertThat(input.filename()).isEqualTo("requests.jsonl");
        Batch created = openAi.batches().create(BatchCreateParams.builder().inputFileId(input.id())
                .endpoint(BatchCreateParams.Endpoint.V1_COMPLETIONS).completionWindow(BatchCreateParams.CompletionWindow._24H)
                .metadata(BatchCreateParams.Metadata.builder().putAdditionalProperty("run", com.openai.core.JsonValue.from("nightly")).build())
                .build());
        assertThat(created.id()).startsWith("batch_");
        assertThat(created.status()).isEqualTo(Batch.Status.VALIDATING);
        Batch done = awaitEnd(openAi, created.id());

        // Then it completed with every line counted
        assertThat(done.status()).isEqualTo(Batch.Status.COMPLETED);
        assertThat(done.requestCounts().orElseThrow().total()).isEqualTo(65);
        assertThat(done.requestCounts().orElseThrow().completed()).isEqualTo(64);
        assertThat(done.requestCounts().orElseThrow().failed()).isEqualTo(1);
        assertThat(done.completedAt()).isPresent();
        assertThat(done.finalizingAt().orElseThrow()).as("finalizing_at, then completed_at")
                .isLessThanOrEqualTo(done.completedAt().orElseThrow());
        assertThat(done.metadata().orElseThrow()._additionalProperties().get("run").asStringOrThrow()).isEqualTo("nightly");

        // And each completion's answer is the simulated worker's, with its exact usage, run in the flex tier
        List<JsonNode> output = download(done.outputFileId().orElseThrow());
        assertThat(output).hasSize(64);
        List<UUID> requestIds = new ArrayList<>();
        for (JsonNode line : output) {
            String prompt = prompts.get(line.get("custom_id").asString());
            assertThat(prompt).as("custom_id %s is one of the file's", line.get("custom_id")).isNotNull();
            assertThat(line.get("id").asString()).startsWith("batch_req_");
            assertThat(line.get("error").isNull()).isTrue();
            JsonNode response = line.get("response");
            assertThat(response.get("status_code").asInt()).isEqualTo(200);
            JsonNode body = response.get("body");
            String[] words = prompt.split(" ");
            String reversed = String.join(" ", java.util.Collections.nCopies(0, "")) + reversed(words, 10);
            assertThat(body.get("object").asString()).isEqualTo("text_completion");
            assertThat(body.get("service_tier").asString()).isEqualTo("flex");
            assertThat(body.get("choices").get(0).get("text").asString()).isEqualTo(reversed);
            assertThat(body.get("usage").get("prompt_tokens").asInt()).isEqualTo(words.length);
            assertThat(body.get("usage").get("completion_tokens").asInt()).isEqualTo(Math.min(words.length, 10));
            requestIds.add(UUID.fromString(response.get("request_id").asString()));
        }
        assertThat(output.stream().map(line -> line.get("custom_id").asString()).collect(Collectors.toSet()))
                .isEqualTo(prompts.keySet());

        // And the refused line is in the error file with the endpoint's own 400, nothing sent for it
        List<JsonNode> errors = download(done.errorFileId().orElseThrow());
        assertThat(errors).singleElement().satisfies(line -> {
            assertThat(line.get("custom_id").asString()).isEqualTo("refused");
            assertThat(line.get("response").get("status_code").asInt()).isEqualTo(400);
            assertThat(line.get("response").get("body").get("error").get("param").asString()).isEqualTo("temperature");
        });

        // And each answer is billed once, in the flex tier, under the request id the output names
        List<Map<String, Object>> rows = jdbc.sql("SELECT request_id, service_tier, prompt_tokens FROM token_usage WHERE user_id = ?")
                .params(user).query().listOfRows();
        assertThat(rows).hasSize(64);
        assertThat(rows.stream().map(row -> (UUID) row.get("request_id")).toList()).containsExactlyInAnyOrderElementsOf(requestIds);
        assertThat(rows).allSatisfy(row -> assertThat(row.get("service_tier")).isEqualTo("flex"));

        // And the lines rode in batches of about eight prompts each
        long batches = batchSizes.count() - batchesBefore;
        double sent = batchSizes.totalAmount() - promptsBefore;
        assertThat(sent / batches).as("%s prompts in %s worker batches", sent, batches).isGreaterThanOrEqualTo(6);

        // And the metrics count the lines run here and the batch among the completed ones
        assertThat(meters.get("gateway.batch.api.lines.run").functionCounter().count()).isGreaterThanOrEqualTo(65);
        assertThat(meters.get("gateway.batch.api.batches").tag("status", "completed").gauge().value()).isGreaterThanOrEqualTo(1);

        // And the files are listed newest first, the output among them
        assertThat(openAi.files().list().data().stream().map(FileObject::id).toList())
                .contains(input.id(), done.outputFileId().orElseThrow());
    }

    @Test
    void aMalformedFileFailsInValidatingNamingEachBadLineAndNothingRuns() throws Exception {
        // Given a file whose line 2 is not JSON, line 3 repeats a custom_id, line 4 names an unknown model
        List<String> lines = List.of(
                line("a", "/v1/chat/completions", Map.of("model", model, "messages", List.of(Map.of("role", "user", "content", "hi")))),
                "{not json",
                line("a", "/v1/chat/completions", Map.of("model", model, "messages", List.of(Map.of("role", "user", "content", "hi")))),
                line("b", "/v1/chat/completions", Map.of("model", "no-such-model", "messages", List.of())));
        FileObject input = upload(lines);

        // When a batch is made of it
        Batch created = openAi.batches().create(BatchCreateParams.builder().inputFileId(input.id())
                .endpoint(BatchCreateParams.Endpoint.V1_CHAT_COMPLETIONS).completionWindow(BatchCreateParams.CompletionWindow._24H)
                .build());
        Batch failed = awaitEnd(openAi, created.id());

        // Then it failed in validation, naming each line, and no line reached a worker
        assertThat(failed.status()).isEqualTo(Batch.Status.FAILED);
        var data = failed.errors().orElseThrow().data().orElseThrow();
        assertThat(data.stream().map(error -> error.line().orElseThrow()).toList()).containsExactly(2L, 3L, 4L);
        assertThat(data.stream().map(error -> error.code().orElseThrow()).toList())
                .containsExactly("invalid_json", "duplicate_custom_id", "model_not_found");
        assertThat(jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id = ?").params(user).query(Long.class).single()).isZero();
    }

    @Test
    void anotherUsersKeyFindsNeitherTheFileNorTheBatch() throws Exception {
        // Given a user's file and batch
        FileObject input = upload(List.of(line("x", "/v1/completions", Map.of("model", model, "prompt", "a b"))));
        Batch batch = openAi.batches().create(BatchCreateParams.builder().inputFileId(input.id())
                .endpoint(BatchCreateParams.Endpoint.V1_COMPLETIONS).completionWindow(BatchCreateParams.CompletionWindow._24H).build());

        // When another user's key asks for them, Then they do not exist for it
        OpenAIClient stranger = client(user + 1 == Long.MAX_VALUE ? 1 : user + 1);
        assertThatThrownBy(() -> stranger.files().retrieve(input.id())).isInstanceOf(NotFoundException.class);
        assertThatThrownBy(() -> stranger.files().content(input.id())).isInstanceOf(NotFoundException.class);
        assertThatThrownBy(() -> stranger.files().delete(input.id())).isInstanceOf(NotFoundException.class);
        assertThatThrownBy(() -> stranger.batches().retrieve(batch.id())).isInstanceOf(NotFoundException.class);
        assertThatThrownBy(() -> stranger.batches().cancel(batch.id())).isInstanceOf(NotFoundException.class);
        assertThat(stranger.batches().list().data()).extracting(Batch::id).doesNotContain(batch.id());
        assertThatThrownBy(() -> stranger.batches().create(BatchCreateParams.builder().inputFileId(input.id())
                .endpoint(BatchCreateParams.Endpoint.V1_COMPLETIONS).completionWindow(BatchCreateParams.CompletionWindow._24H).build()))
                .isInstanceOf(NotFoundException.class);

        // And the owner still has both
        assertThat(openAi.files().retrieve(input.id()).id()).isEqualTo(input.id());
        assertThat(awaitEnd(openAi, batch.id()).status()).isEqualTo(Batch.Status.COMPLETED);
    }

    @Test
    void anUploadForAnotherPurposeOrWithoutAFileIsRefusedInOpenAisShape() throws Exception {
        Path file = files.resolve("x.jsonl");
        Files.writeString(file, "{}\n");

        assertThatThrownBy(() -> openAi.files().create(FileCreateParams.builder().file(file).purpose(FilePurpose.ASSISTANTS).build()))
                .isInstanceOf(BadRequestException.class).hasMessageContaining("purpose");
        var noFile = gateway.send(HttpRequest.newBuilder(gateway.uri("/v1/files"))
                .header("Authorization", gateway.bearer(user))
                .header("Content-Type", "multipart/form-data; boundary=b")
                .POST(HttpRequest.BodyPublishers.ofString("--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b--\r\n")));
        assertThat(noFile.statusCode()).isEqualTo(400);
        assertThat(json.readTree(noFile.body()).get("error").get("param").asString()).isEqualTo("file");
    }

    @Test
    void aBatchOfAUserOverItsLimitWaitsForTheWindowAndIsCancelledWithTheLinesThatRan() throws Exception {
        // Given a user who may send 3 requests a minute, and a batch of 12 lines
        var limits = gateway.admin("PUT", "/admin/users/" + user + "/limits", "{\"tokens_per_day\": null, \"tokens_per_month\": null, \"requests_per_minute\": 3}");
        assertThat(limits.statusCode()).isEqualTo(200);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            lines.add(line("r" + i, "/v1/completions", Map.of("model", model, "prompt", "p " + i)));
        }
        Batch batch = openAi.batches().create(BatchCreateParams.builder().inputFileId(upload(lines).id())
                .endpoint(BatchCreateParams.Endpoint.V1_COMPLETIONS).completionWindow(BatchCreateParams.CompletionWindow._24H).build());

        // When three have run, the batch waits, in progress, with none failed
        Batch waiting = await(openAi, batch.id(), seen -> seen.requestCounts().map(counts -> counts.completed() == 3).orElse(false));
        assertThat(waiting.status()).isEqualTo(Batch.Status.IN_PROGRESS);
        assertThat(waiting.requestCounts().orElseThrow().failed()).isZero();

        // And when it is cancelled
        long asked = System.nanoTime();
        Batch cancelling = openAi.batches().cancel(batch.id());
        assertThat(cancelling.status()).isIn(Batch.Status.CANCELLING, Batch.Status.CANCELLED);
        Batch cancelled = awaitEnd(openAi, batch.id());
        Duration took = Duration.ofNanos(System.nanoTime() - asked);

        // Then it is cancelled within 15 s, and its output holds exactly the three lines that ran, billed
        assertThat(cancelled.status()).isEqualTo(Batch.Status.CANCELLED);
        assertThat(took).as("cancelled after %s ms, expected within 15 s", took.toMillis()).isLessThan(Duration.ofSeconds(15));
        assertThat(download(cancelled.outputFileId().orElseThrow())).hasSize(3);
        assertThat(cancelled.errorFileId()).isEmpty();
        assertThat(jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id = ?").params(user).query(Long.class).single()).isEqualTo(3);
    }

    @Test
    void aBatchRunsUnderTheLimitsOfTheKeyItWasCreatedWithAndWaitsForTheirWindow() throws Exception {
        // Given a key of its own limits, 3 requests a minute (its user has none), and a batch of 6 lines created with it
        var issued = gateway.admin("POST", "/admin/keys", """
                {"user_id": %d, "name": "nightly", "limits": {"tokens_per_day": null, "tokens_per_month": null, "requests_per_minute": 3}}"""
                .formatted(user));
        assertThat(issued.statusCode()).as(issued.body()).isEqualTo(201);
        openAi = OpenAIOkHttpClient.builder().baseUrl("http://localhost:" + port + "/v1")
                .apiKey(json.readTree(issued.body()).get("key").asString()).maxRetries(0).build();
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            lines.add(line("k" + i, "/v1/completions", Map.of("model", model, "prompt", "p " + i)));
        }
        Batch batch = openAi.batches().create(BatchCreateParams.builder().inputFileId(upload(lines).id())
                .endpoint(BatchCreateParams.Endpoint.V1_COMPLETIONS).completionWindow(BatchCreateParams.CompletionWindow._24H).build());

        // When three have run, Then the batch waits for the key's minute, in progress, with none failed
        Batch waiting = await(openAi, batch.id(), seen -> seen.requestCounts().map(counts -> counts.completed() >= 3).orElse(false));
        assertThat(waiting.status()).isEqualTo(Batch.Status.IN_PROGRESS);
        assertThat(waiting.requestCounts().orElseThrow().completed()).as("lines run under a key of 3 a minute").isEqualTo(3);
        assertThat(waiting.requestCounts().orElseThrow().failed()).isZero();
        assertThat(jdbc.sql("SELECT not_before IS NOT NULL FROM batch WHERE id = ?").params(batch.id()).query(Boolean.class).single())
                .as("the batch waits for the key's window").isTrue();
        openAi.batches().cancel(batch.id());
        assertThat(awaitEnd(openAi, batch.id()).status()).isEqualTo(Batch.Status.CANCELLED);
    }

    private static String reversed(String[] words, int most) {
        List<String> reversed = new ArrayList<>(List.of(words));
        java.util.Collections.reverse(reversed);
        return String.join(" ", reversed.subList(0, Math.min(most, reversed.size())));
    }

    private String line(String customId, String url, Map<String, Object> body) {
        return json.writeValueAsString(Map.of("custom_id", customId, "method", "POST", "url", url, "body", body));
    }

    private FileObject upload(List<String> lines) throws IOException {
        Path file = files.resolve("requests.jsonl");
        Files.writeString(file, String.join("\n", lines));
        return openAi.files().create(FileCreateParams.builder().file(file).purpose(FilePurpose.BATCH).build());
    }

    private List<JsonNode> download(String fileId) throws IOException {
        try (var response = openAi.files().content(fileId); InputStream body = response.body()) {
            String text = new String(body.readAllBytes(), StandardCharsets.UTF_8);
            return text.lines().filter(line -> !line.isBlank()).map(json::readTree).toList();
        }
    }

    private static Batch awaitEnd(OpenAIClient client, String id) throws InterruptedException {
        return await(client, id, batch -> switch (batch.status().value()) {
            case COMPLETED, FAILED, EXPIRED, CANCELLED -> true;
            default -> false;
        });
    }

    /** Polls the batch, as a client of the Batch API does, until it is as wanted or the patience ends. */
    static Batch await(OpenAIClient client, String id, java.util.function.Predicate<Batch> wanted) throws InterruptedException {
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        Batch batch = client.batches().retrieve(id);
        while (!wanted.test(batch)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("batch " + id + " still " + batch.status() + " with " + batch.requestCounts()
                        + " after " + PATIENCE.toSeconds() + " s");
            }
            Thread.sleep(50); // a poll's pause, as an SDK user's loop has: the state is read again, never assumed
            batch = client.batches().retrieve(id);
        }
        return batch;
    }
}
