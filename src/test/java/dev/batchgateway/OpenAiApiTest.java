package dev.batchgateway;

import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import dev.batchgateway.worker.FakeVllm;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The OpenAI-compatible API, driven by the official OpenAI Java SDK (a client nobody here wrote) and by plain HTTP where
 * the wire matters, against the whole gateway in front of a fake vLLM, with a real PostgreSQL.
 */
@GatewayApplicationTest(properties = {"gateway.worker.type=vllm", "gateway.worker.model=" + OpenAiApiTest.MODEL,
                "gateway.batch.size=8", "gateway.batch.max-wait=500ms"})
class OpenAiApiTest {

    static final String MODEL = "Qwen/Qwen2.5-1.5B-Instruct";
    static final FakeVllm vllm = new FakeVllm(MODEL);

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", vllm::url);
    }

    @AfterAll
    static void stopVllm() {
        vllm.close();
    }

    @LocalServerPort
    int port;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();
    private final HttpClient http = HttpClient.newHttpClient();
    private OpenAIClient openAi;
    private long user;

    @Autowired
    GatewayClient gateway;

    @BeforeEach
    void connect() {
        user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        openAi = OpenAIOkHttpClient.builder().baseUrl("http://localhost:" + port + "/v1").apiKey(gateway.key(user)).maxRetries(0).build();
        vllm.server().resetRequests();
    }

    private CompletionCreateParams.Builder completion(String prompt) {
        return CompletionCreateParams.builder().model(MODEL).prompt(prompt).maxTokens(5).user(Long.toString(user));
    }

    @Test
    void theModelListNamesTheServedModel() {
        var models = openAi.models().list().data();

        assertThat(models).singleElement().satisfies(model -> {
            assertThat(model.id()).isEqualTo(MODEL);
            assertThat(model.ownedBy()).isEqualTo("batch-gateway");
        });
    }

    @Test
    void eightSdkCallsAreOneWorkerCallAndEachIsBilledExactlyWhatTheSdkReports() throws Exception {
        // Given eight SDK callers of one user with prompts of different lengths
        List<String> prompts = new ArrayList<>();
        for (int i = 1; i <= 8; i++) {
            prompts.add("w".repeat(i) + " tail".repeat(i));
        }

        // When they call at once
        List<Completion> answers = new ArrayList<>();
        try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Completion>> calls = prompts.stream()
                    .map(prompt -> callers.submit(() -> openAi.completions().create(completion(prompt).build())))
                    .toList();
            for (var call : calls) {
                answers.add(call.get(30, TimeUnit.SECONDS));
            }
        }

        // Then the worker got one call with the eight prompts
        assertThat(vllm.calls()).singleElement().satisfies(call -> assertThat(call).containsExactlyInAnyOrderElementsOf(prompts));

        // And each caller got its text and the fake's exact counts, which are what the usage rows hold
        long promptTokens = 0;
        long completionTokens = 0;
        for (int i = 0; i < 8; i++) {
            Completion answer = answers.get(i);
            String prompt = prompts.get(i);
            assertThat(answer.id()).startsWith("cmpl-");
            assertThat(answer.model()).isEqualTo(MODEL);
            assertThat(answer.choices()).singleElement().satisfies(choice -> {
                assertThat(choice.index()).isZero();
                assertThat(choice.text()).isEqualTo(prompt.toUpperCase());
            });
            var usage = answer.usage().orElseThrow();
            assertThat(usage.promptTokens()).isEqualTo(FakeVllm.promptTokens(prompts.get(i)));
            assertThat(usage.completionTokens()).isEqualTo(FakeVllm.completionTokens(prompts.get(i), 5));
            assertThat(usage.totalTokens()).isEqualTo(usage.promptTokens() + usage.completionTokens());
            promptTokens += usage.promptTokens();
            completionTokens += usage.completionTokens();
        }
        UsageRows.await(jdbc, user, 8);
        var billed = jdbc.sql("SELECT sum(prompt_tokens), sum(completion_tokens) FROM token_usage WHERE user_id = ?")
                .param(user)
                .query((rs, n) -> List.of(rs.getLong(1), rs.getLong(2)))
                .single();
        assertThat(billed).containsExactly(promptTokens, completionTokens);
    }

    @Test
    void anArrayOfTwentyPromptsIsSplitOverBatchesAndAnsweredInOneResponseInPromptOrder() {
        // Given one call with twenty prompts
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            prompts.add("prompt" + "x".repeat(i));
        }

        // When it is made
        Completion answer = openAi.completions().create(completion("unused")
                .prompt(CompletionCreateParams.Prompt.ofArrayOfStrings(prompts))
                .build());

        // Then the choices come back with index 0…19, each with its own prompt's text, and the usage is their sum
        assertThat(answer.choices()).extracting(CompletionChoice::index)
                .containsExactlyElementsOf(java.util.stream.LongStream.range(0, 20).boxed().toList());
        for (int i = 0; i < 20; i++) {
            assertThat(answer.choices().get(i).text()).isEqualTo(prompts.get(i).toUpperCase());
        }
        assertThat(answer.usage().orElseThrow().promptTokens()).isEqualTo(20);

        // And the prompts went to the worker in batches of at most eight
        assertThat(vllm.calls()).hasSizeGreaterThanOrEqualTo(3).allSatisfy(call -> assertThat(call).hasSizeLessThanOrEqualTo(8));
        assertThat(vllm.calls().stream().mapToInt(List::size).sum()).isEqualTo(20);
    }

    @Test
    void aStreamedCompletionArrivesInOpenAisChunkFormatWithAUsageChunk() {
        try (var stream = openAi.completions().createStreaming(completion("stream me please")
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
                .build())) {
            List<Completion> chunks = stream.stream().toList();

            // the text in pieces as the worker streamed them, then the finish reason, then the usage
            assertThat(chunks.size()).isGreaterThan(3);
            String text = chunks.stream().flatMap(chunk -> chunk.choices().stream()).map(CompletionChoice::text)
                    .reduce("", String::concat);
            assertThat(text).isEqualTo("STREAM ME PLEASE");
            assertThat(chunks.get(chunks.size() - 2).choices()).singleElement()
                    .satisfies(choice -> assertThat(choice.finishReason()).isEqualTo(CompletionChoice.FinishReason.LENGTH));
            assertThat(chunks.getLast().choices()).isEmpty();
            assertThat(chunks.getLast().usage().orElseThrow().promptTokens()).isEqualTo(3);
            assertThat(chunks.getLast().usage().orElseThrow().completionTokens()).isEqualTo(5);
        }
    }

    @Test
    void aChatGoesToTheWorkersChatEndpointWithItsMessagesAndIsBilledWhatTheSdkReports() throws Exception {
        // When the SDK sends a conversation
        ChatCompletion answer = openAi.chat().completions().create(ChatCompletionCreateParams.builder()
                .model(MODEL)
                .addSystemMessage("You are terse.")
                .addUserMessage("name a colour")
                .maxCompletionTokens(3)
                .user(Long.toString(user))
                .build());

        // Then the worker's chat endpoint got the messages as they were
        assertThat(vllm.chats()).containsExactly(List.of("system: You are terse.", "user: name a colour"));

        // And the answer is OpenAI's chat shape with the worker's counts, which are what the usage row holds
        assertThat(answer.id()).startsWith("chatcmpl-");
        assertThat(answer.choices()).singleElement().satisfies(choice -> {
            assertThat(choice.message().content()).hasValue("NAME A COLOUR");
            assertThat(choice.finishReason()).isEqualTo(ChatCompletion.Choice.FinishReason.LENGTH);
        });
        var usage = answer.usage().orElseThrow();
        assertThat(usage.promptTokens()).isEqualTo(3 + 2 + 3 + 2);
        assertThat(usage.completionTokens()).isEqualTo(3);
        UsageRows.await(jdbc, user, 1);
        assertThat(jdbc.sql("SELECT prompt_tokens, completion_tokens FROM token_usage WHERE user_id = ?").param(user)
                        .query((rs, n) -> List.of(rs.getLong(1), rs.getLong(2))).single())
                .containsExactly(usage.promptTokens(), usage.completionTokens());
    }

    @Test
    void aStreamedChatArrivesAsChunksWithTheRoleTheTextTheFinishReasonAndUsage() {
        try (var stream = openAi.chat().completions().createStreaming(ChatCompletionCreateParams.builder()
                .model(MODEL)
                .addUserMessage("stream this chat")
                .user(Long.toString(user))
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
                .build())) {
            List<ChatCompletionChunk> chunks = stream.stream().toList();

            String text = chunks.stream()
                    .flatMap(chunk -> chunk.choices().stream())
                    .map(choice -> choice.delta().content().orElse(""))
                    .reduce("", String::concat);
            assertThat(text).isEqualTo("STREAM THIS CHAT");
            assertThat(chunks.stream().flatMap(chunk -> chunk.choices().stream())
                    .filter(choice -> choice.finishReason().isPresent())).hasSize(1);
            assertThat(chunks.getLast().choices()).isEmpty();
            assertThat(chunks.getLast().usage().orElseThrow().promptTokens()).isEqualTo(3 + 2);
        }
    }

    @Test
    void chatMessagesThatAreNotTextAreRefusedNamingTheField() throws Exception {
        var answer = post("/v1/chat/completions", """
                {"model": "%s", "user": "%d", "messages": [{"role": "user", "content": [{"type": "image_url",
                 "image_url": {"url": "http://x/y.png"}}]}]}""".formatted(MODEL, user));

        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(400);
        assertThat(json.readTree(answer.body()).at("/error/param").asString()).isEqualTo("messages[0].content");
        assertThat(vllm.chats()).isEmpty();
    }

    @Test
    void anUnknownModelIsTheSdksNotFoundAndAnUnhonouredFieldItsBadRequestNamingTheField() {
        assertThatThrownBy(() -> openAi.completions().create(completion("hi").model("gpt-4o").build()))
                .isInstanceOfSatisfying(NotFoundException.class, e -> {
                    assertThat(e.code()).hasValue("model_not_found");
                    assertThat(e.param()).hasValue("model");
                });
        assertThatThrownBy(() -> openAi.completions().create(completion("hi").n(2).build()))
                .isInstanceOfSatisfying(BadRequestException.class, e -> assertThat(e.param()).hasValue("n"));
    }

    @Test
    void aRevokedKeyIsTheSdksUnauthorized() {
        // Given a key that worked
        assertThat(openAi.completions().create(completion("before").build()).choices()).hasSize(1);

        // When the operator revokes it
        var listed = json.readTree(gateway.get("/admin/keys?user_id=" + user).body());
        String id = listed.at("/keys/0/id").asString();
        var revoked = gateway.send(HttpRequest.newBuilder(gateway.uri("/admin/keys/" + id)).DELETE()
                .header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN));
        assertThat(revoked.statusCode()).isEqualTo(204);

        // Then the SDK raises its AuthenticationError, OpenAI's invalid_api_key
        assertThatThrownBy(() -> openAi.completions().create(completion("after").build()))
                .isInstanceOfSatisfying(UnauthorizedException.class, e -> assertThat(e.code()).hasValue("invalid_api_key"));
    }

    @Test
    void answersHaveExactlyOpenAisFieldsWithItsNullsAndPassTheSdksOwnValidation() throws Exception {
        // When a completion, a chat and the model list are asked for over plain HTTP
        var text = json.readTree(post("/v1/completions", """
                {"model": "%s", "prompt": "one two", "max_tokens": 3}""".formatted(MODEL)).body());
        var chat = json.readTree(post("/v1/chat/completions", """
                {"model": "%s", "messages": [{"role": "user", "content": "one two"}], "max_tokens": 3}""".formatted(MODEL)).body());

        // Then the fields are OpenAI's (the subtle ones: logprobs present and null, no system_fingerprint invented)
        assertThat(fieldNames(text)).containsExactlyInAnyOrder("id", "object", "created", "model", "choices", "usage", "service_tier");
        assertThat(fieldNames(text.at("/choices/0"))).containsExactlyInAnyOrder("text", "index", "logprobs", "finish_reason");
        assertThat(text.at("/choices/0/logprobs").isNull()).isTrue();
        assertThat(fieldNames(text.get("usage"))).containsExactlyInAnyOrder("prompt_tokens", "completion_tokens", "total_tokens");
        assertThat(fieldNames(chat)).containsExactlyInAnyOrder("id", "object", "created", "model", "choices", "usage", "service_tier");
        assertThat(List.of(text.get("service_tier").asString(), chat.get("service_tier").asString())).containsOnly("default");
        assertThat(fieldNames(chat.at("/choices/0"))).containsExactlyInAnyOrder("index", "message", "logprobs", "finish_reason");
        assertThat(fieldNames(chat.at("/choices/0/message"))).containsExactlyInAnyOrder("role", "content", "refusal");
        assertThat(chat.at("/choices/0/message/refusal").isNull()).isTrue();

        // And the SDK's validation, generated from OpenAI's OpenAPI description, accepts every answer
        openAi.completions().create(completion("one two").build()).validate();
        openAi.chat().completions().create(ChatCompletionCreateParams.builder().model(MODEL).addUserMessage("one two")
                .maxCompletionTokens(3).build()).validate();
        openAi.models().list().data().forEach(com.openai.models.models.Model::validate);
    }

    private static List<String> fieldNames(JsonNode node) {
        return List.copyOf(node.propertyNames());
    }

    @Test
    void answersAreCountedByEndpointAndStatusAndCarryARequestId() throws Exception {
        String series = "gateway_requests_total{endpoint=\"/v1/completions\",status=\"404\"}";
        double before = counted(series);

        var answer = post("""
                {"model": "no-such-model", "prompt": "hi"}""");

        assertThat(answer.statusCode()).isEqualTo(404);
        assertThat(answer.headers().firstValue("X-Request-Id")).hasValueSatisfying(id -> assertThat(UUID.fromString(id)).hasToString(id));
        assertThat(counted(series)).isEqualTo(before + 1);
    }

    private double counted(String series) {
        return gateway.get("/actuator/prometheus").body().lines().filter(line -> line.startsWith(series + " "))
                .mapToDouble(line -> Double.parseDouble(line.substring(series.length() + 1).strip())).findFirst().orElse(0);
    }

    @Test
    void aStreamedPromptArrayInterleavesItsChoicesByIndexAndEndsEachWithItsFinishReason() throws Exception {
        var answer = post("""
                {"model": "%s", "prompt": ["first prompt here", "second one"], "max_tokens": 5, "stream": true,
                 "stream_options": {"include_usage": true}}""".formatted(MODEL));

        assertThat(answer.statusCode()).isEqualTo(200);
        assertThat(answer.headers().firstValue("Content-Type")).hasValueSatisfying(type -> assertThat(type).startsWith("text/event-stream"));
        List<String> data = answer.body().lines().filter(line -> line.startsWith("data: ")).map(line -> line.substring(6)).toList();
        assertThat(data.getLast()).isEqualTo("[DONE]");
        StringBuilder[] texts = {new StringBuilder(), new StringBuilder()};
        List<Integer> finished = new ArrayList<>();
        for (String chunk : data.subList(0, data.size() - 2)) {
            JsonNode choice = json.readTree(chunk).at("/choices/0");
            texts[choice.get("index").asInt()].append(choice.get("text").asString());
            if (!choice.get("finish_reason").isNull()) {
                finished.add(choice.get("index").asInt());
            }
        }
        assertThat(texts[0]).hasToString("FIRST PROMPT HERE");
        assertThat(texts[1]).hasToString("SECOND ONE");
        assertThat(finished).containsExactlyInAnyOrder(0, 1);
        JsonNode usage = json.readTree(data.get(data.size() - 2)).get("usage");
        assertThat(usage.get("prompt_tokens").asInt()).isEqualTo(3 + 2);
        assertThat(usage.get("completion_tokens").asInt()).isEqualTo(5 + 5);
    }

    @Test
    void openAisDefaultValuesAreAcceptedAsLangChainSendsThem() throws Exception {
        var answer = post("""
                {"model": "%s", "prompt": "hello there", "max_tokens": 3, "n": 1, "echo": false, "best_of": 1,
                 "frequency_penalty": 0, "presence_penalty": 0.0, "logprobs": null, "logit_bias": {}, "suffix": null,
                 "temperature": 0.7, "top_p": 1, "stop": ["\\n"], "seed": 7, "stream": false, "user": "%d"}"""
                .formatted(MODEL, user));

        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
        JsonNode body = json.readTree(answer.body());
        assertThat(body.get("object").asString()).isEqualTo("text_completion");
        assertThat(body.at("/choices/0/logprobs").isNull()).isTrue();
        assertThat(body.at("/choices/0/finish_reason").asString()).isEqualTo("length");

        // And the sampling settings reached the worker with the batch
        JsonNode sent = json.readTree(vllm.server().getAllServeEvents().getFirst().getRequest().getBodyAsString());
        assertThat(sent.get("temperature").asDouble()).isEqualTo(0.7);
        assertThat(sent.get("top_p").asDouble()).isEqualTo(1.0);
        assertThat(sent.get("stop").get(0).asString()).isEqualTo("\n");
        assertThat(sent.get("seed").asLong()).isEqualTo(7);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "\"frequency_penalty\": 0.5 | frequency_penalty",
            "\"echo\": true | echo",
            "\"logprobs\": 2 | logprobs",
            "\"functions\": [] | functions",
            "\"n\": 3 | n",
            "\"temperature\": 3 | temperature",
            "\"temperature\": \"hot\" | temperature",
            "\"top_p\": 0 | top_p",
            "\"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"] | stop",
            "\"seed\": 1.5 | seed",
            "\"max_tokens\": 0 | max_tokens",
            "\"stream\": \"yes\" | stream",
            "\"stream_options\": {\"include_usage\": true} | stream_options",
            "\"prompt\": [] | prompt",
            "\"prompt\": [[1,2,3]] | prompt",
            "\"prompt\": 42 | prompt",
            "\"service_tier\": \"priority\" | service_tier",
            "\"service_tier\": \"scale\" | service_tier",
            "\"service_tier\": 2 | service_tier",
    })
    void aFieldTheGatewayDoesNotHonourOrAWrongTypeIs400InOpenAisShapeNamingIt(String field, String param) throws Exception {
        String prompt = param.equals("prompt") ? "" : "\"prompt\": \"hello\", ";
        var answer = post("""
                {"model": "%s", %s"user": "%d", %s}""".formatted(MODEL, prompt, user, field));

        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(400);
        JsonNode error = json.readTree(answer.body()).get("error");
        assertThat(error.get("type").asString()).isEqualTo("invalid_request_error");
        assertThat(error.get("param").asString()).isEqualTo(param);
        assertThat(error.get("message").asString()).isNotBlank();
        assertThat(vllm.calls()).isEmpty();
    }

    @Test
    void aChatRunsInTheTierItNamesSaysSoInItsAnswerAndEveryChunkAndAnyOtherTierIs400NamingServiceTier() throws Exception {
        // When a chat names the flex tier, whole and streamed, and one names a tier that does not exist
        var whole = post("/v1/chat/completions", """
                {"model": "%s", "messages": [{"role": "user", "content": "one two"}], "max_tokens": 3,
                 "service_tier": "flex"}""".formatted(MODEL));
        var streamed = post("/v1/chat/completions", """
                {"model": "%s", "messages": [{"role": "user", "content": "one two"}], "max_tokens": 3,
                 "service_tier": "flex", "stream": true, "stream_options": {"include_usage": true}}""".formatted(MODEL));
        var unknown = post("/v1/chat/completions", """
                {"model": "%s", "messages": [{"role": "user", "content": "one two"}], "service_tier": "priority"}"""
                .formatted(MODEL));

        // Then the answer and every chunk say flex, and its usage row too
        assertThat(whole.statusCode()).as(whole.body()).isEqualTo(200);
        assertThat(json.readTree(whole.body()).get("service_tier").asString()).isEqualTo("flex");
        assertThat(streamed.statusCode()).as(streamed.body()).isEqualTo(200);
        List<JsonNode> chunks = streamed.body().lines().filter(line -> line.startsWith("data: {"))
                .map(line -> json.readTree(line.substring("data: ".length()))).toList();
        assertThat(chunks).hasSizeGreaterThan(2)
                .allSatisfy(chunk -> assertThat(chunk.get("service_tier").asString()).as(chunk.toString()).isEqualTo("flex"));
        UsageRows.await(jdbc, user, 2);
        assertThat(jdbc.sql("SELECT service_tier FROM token_usage WHERE user_id = ?").param(user).query(String.class).list())
                .containsExactly("flex", "flex");

        // And the unknown tier is OpenAI's 400 naming service_tier, sent to no worker
        assertThat(unknown.statusCode()).as(unknown.body()).isEqualTo(400);
        assertThat(json.readTree(unknown.body()).at("/error/param").asString()).isEqualTo("service_tier");
        assertThat(json.readTree(unknown.body()).at("/error/type").asString()).isEqualTo("invalid_request_error");
    }

    @Test
    void oneModelIsTheListsEntryAndAnUnknownOneTheSdksNotFound() {
        // a served model's id has a slash, which the SDK sends encoded as %2F
        var model = openAi.models().retrieve(MODEL);

        assertThat(model.id()).isEqualTo(MODEL);
        assertThat(model.ownedBy()).isEqualTo("batch-gateway");
        assertThat(model.created()).isEqualTo(openAi.models().list().data().getFirst().created());
        model.validate();
        assertThatThrownBy(() -> openAi.models().retrieve("gpt-4o"))
                .isInstanceOfSatisfying(NotFoundException.class, e -> {
                    assertThat(e.code()).hasValue("model_not_found");
                    assertThat(e.getMessage()).contains("gpt-4o");
                });
    }

    @Test
    void oneModelIsFoundByItsPathWithItsSlashAsItIs() throws Exception {
        var answer = http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/v1/models/" + MODEL))
                .header("Authorization", gateway.bearer(user)).build(), HttpResponse.BodyHandlers.ofString());

        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
        assertThat(fieldNames(json.readTree(answer.body()))).containsExactlyInAnyOrder("id", "object", "created", "owned_by");
        assertThat(json.readTree(answer.body()).get("id").asString()).isEqualTo(MODEL);
    }

    @Test
    void aRouteTheGatewayDoesNotServeIsTheSdksNotFoundNamingTheRoutesItDoes() {
        assertThatThrownBy(() -> openAi.moderations().create(com.openai.models.moderations.ModerationCreateParams.builder()
                        .input("hello").build()))
                .isInstanceOfSatisfying(NotFoundException.class, e -> assertThat(e.getMessage())
                        .contains("Invalid URL (POST /v1/moderations)")
                        .contains("POST /v1/chat/completions", "POST /v1/completions", "POST /v1/responses", "GET /v1/models",
                                "GET /v1/models/{model}"));
    }

    /** Every failure under /v1, whoever answers it (a handler, Spring's routing, a filter), is OpenAI's error object. */
    @ParameterizedTest(name = "{0} {1} {2} -> {3}")
    @CsvSource(delimiter = '|', value = {
            "POST   | /v1/audio/speech     | application/json | 404 | Invalid URL (POST /v1/audio/speech): the OpenAI-compatible API",
            "GET    | /v1                  |                  | 404 | Invalid URL (GET /v1)",
            "POST   | /v1/completions;x=1  | application/json | 404 | path parameters",
            "GET    | /v1/chat/completions |                  | 405 | GET is not allowed on /v1/chat/completions: use POST",
            "DELETE | /v1/models           |                  | 405 | DELETE is not allowed on /v1/models: use GET",
            "POST   | /v1/completions      | text/plain       | 415 | application/json",
            "POST   | /v1/chat/completions | big              | 413 | larger than 1048576 bytes",
            "POST   | /v1/completions      | chunked          | 413 | larger than 1048576 bytes",
    })
    void everyFailureUnderV1IsInOpenAisErrorShape(String method, String path, String type, int status, String message)
            throws Exception {
        var answer = send(method, path, type);

        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(status);
        assertThat(answer.headers().firstValue("Content-Type")).hasValue("application/json");
        JsonNode body = json.readTree(answer.body());
        assertThat(fieldNames(body)).containsExactly("error");
        assertThat(fieldNames(body.get("error"))).containsExactlyInAnyOrder("message", "type", "param", "code");
        assertThat(body.at("/error/type").asString()).isEqualTo("invalid_request_error");
        assertThat(body.at("/error/message").asString()).contains(message);
        if (status == 405) {
            assertThat(answer.headers().firstValue("Allow")).isPresent();
        }
        if (status == 413) {
            // the connection closes after it: its end is told by its length, not by the close (a reset can cut that)
            assertThat(answer.headers().firstValue("Connection")).hasValue("close");
            assertThat(answer.headers().firstValueAsLong("Content-Length"))
                    .hasValue(answer.body().getBytes(java.nio.charset.StandardCharsets.UTF_8).length);
        }
    }

    @Test
    void aHeaderJettyRefusesUnderV1IsInOpenAisShapeToo() throws Exception {
        // Given a header larger than the web server's 8 KiB: refused before any servlet sees the request
        var answer = http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/v1/chat/completions"))
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer bg_" + "x".repeat(10 * 1024))
                .POST(HttpRequest.BodyPublishers.ofString("{}"))
                .build(), HttpResponse.BodyHandlers.ofString());

        assertThat(answer.statusCode()).isEqualTo(400);
        assertThat(answer.headers().firstValue("Content-Type")).hasValue("application/json");
        assertThat(json.readTree(answer.body()).at("/error/message").asString()).contains("larger than 8 KiB");
        assertThat(json.readTree(answer.body()).at("/error/type").asString()).isEqualTo("invalid_request_error");
    }

    /** The same failures beside /v1 stay problem+json, exactly as before. */
    @ParameterizedTest(name = "{0} {1} {2} -> {3}")
    @CsvSource(delimiter = '|', value = {
            "POST   | /responses    | application/json | 404 | No static resource responses.",
            "POST   | /v1x          | application/json | 404 | No static resource v1x.",
            "POST   | /complete;x=1 | application/json | 404 | no such path: path parameters (;…) are not part of any route",
            "GET    | /complete     |                  | 405 | Method 'GET' is not supported.",
            "POST   | /complete     | text/plain       | 415 | Content-Type 'text/plain;charset=UTF-8' is not supported: send the body as JSON with -H 'Content-Type: application/json'",
            "POST   | /complete     | big              | 413 | the request body is larger than 1048576 bytes",
            "POST   | /v1%2Fcompletions | application/json | 404 | No static resource v1%2Fcompletions.",
    })
    void theSameFailuresElsewhereAreProblemJsonAsBefore(String method, String path, String type, int status, String detail)
            throws Exception {
        var answer = send(method, path, type);

        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(status);
        assertThat(answer.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        JsonNode problem = json.readTree(answer.body());
        assertThat(problem.get("status").asInt()).isEqualTo(status);
        assertThat(problem.get("detail").asString()).isEqualTo(detail);
        assertThat(problem.has("error")).isFalse();
    }

    private HttpResponse<String> send(String method, String path, String type) throws Exception {
        var request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + path)).header("Authorization", gateway.bearer(user));
        if (type == null) {
            request.method(method, HttpRequest.BodyPublishers.noBody());
        } else if (type.equals("chunked")) {
            var chunks = new ArrayList<byte[]>();
            chunks.add(("{\"model\": \"" + MODEL + "\", \"prompt\": \"").getBytes(java.nio.charset.StandardCharsets.UTF_8));
            for (int i = 0; i < 140; i++) {
                chunks.add("x".repeat(8192).getBytes(java.nio.charset.StandardCharsets.UTF_8));
            }
            request.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofByteArrays(chunks));
        } else if (type.equals("big")) {
            // as curl sends a body over 1 MiB: the 413 comes before the body, which a closing server would cut with a reset
            request.expectContinue(true).header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(
                    "{\"model\": \"" + MODEL + "\", \"prompt\": \"" + "x".repeat(1_100_000) + "\"}"));
        } else {
            request.header("Content-Type", type).method(method, HttpRequest.BodyPublishers.ofString(
                    "{\"model\": \"" + MODEL + "\", \"prompt\": \"hi\", \"max_tokens\": 1}"));
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void invalidJsonIs400InOpenAisShape() throws Exception {
        var answer = post("{\"model\": ");

        assertThat(answer.statusCode()).isEqualTo(400);
        assertThat(json.readTree(answer.body()).at("/error/type").asString()).isEqualTo("invalid_request_error");
    }

    @Autowired
    @Qualifier("workerHealthIndicator")
    HealthIndicator workerHealth;

    /** The {@code max_tokens} of each call the fake vLLM got on {@code path}, in order. */
    private List<Integer> sentMaxTokens(String path) {
        return vllm.server().findAll(postRequestedFor(urlEqualTo(path))).stream()
                .map(request -> json.readTree(request.getBodyAsString()).path("max_tokens").asInt()).toList();
    }

    @Test
    void maxTokensAsTheModelAllowsIsAcceptedAndAboveItIsOpenAis400NamingTheField() throws Exception {
        // Given the worker checked: the fake vLLM reports max_model_len 4,096, its template 3 tokens a message
        assertThat(workerHealth.health().getStatus()).isEqualTo(Status.UP);

        // When chats ask for 1,024 tokens, for 4,097, and for 5,000 as max_completion_tokens
        var fits = post("/v1/chat/completions", """
                {"model": "%s", "messages": [{"role": "user", "content": "one two"}], "max_tokens": 1024}""".formatted(MODEL));
        var beyond = post("/v1/chat/completions", """
                {"model": "%s", "messages": [{"role": "user", "content": "one two"}], "max_tokens": 4097}""".formatted(MODEL));
        var beyondCompletion = post("/v1/chat/completions", """
                {"model": "%s", "messages": [{"role": "user", "content": "one two"}], "max_completion_tokens": 5000}"""
                .formatted(MODEL));

        // Then the first reached the worker as asked; the others are 400s that say the limit and why
        assertThat(fits.statusCode()).as(fits.body()).isEqualTo(200);
        assertThat(sentMaxTokens("/v1/chat/completions")).containsExactly(1024);
        assertThat(beyond.statusCode()).isEqualTo(400);
        JsonNode error = json.readTree(beyond.body()).get("error");
        assertThat(error.get("param").asString()).isEqualTo("max_tokens");
        assertThat(error.get("message").asString()).isEqualTo("max_tokens is 4097, more than 4096: the context of model "
                + MODEL + " is 4096 tokens, as its server reports it; send at most 4096");
        assertThat(beyondCompletion.statusCode()).isEqualTo(400);
        assertThat(json.readTree(beyondCompletion.body()).at("/error/param").asString()).isEqualTo("max_completion_tokens");
        assertThat(json.readTree(beyondCompletion.body()).at("/error/message").asString()).startsWith("max_completion_tokens is 5000");
    }

    @Test
    void aLargerContextIsLearnedAtTheNextCheckAndThenAllowsMore() throws Exception {
        try {
            // Given the server restarted with a context of 8,192 tokens, and the next check
            vllm.maxModelLen = 8192;
            workerHealth.health();

            // When a chat asks for 4,096 tokens, a common client setting
            var asked = post("/v1/chat/completions", """
                    {"model": "%s", "messages": [{"role": "user", "content": "one two"}], "max_tokens": 4096}""".formatted(MODEL));

            // Then it is answered
            assertThat(asked.statusCode()).as(asked.body()).isEqualTo(200);
            assertThat(sentMaxTokens("/v1/chat/completions")).containsExactly(4096);
        } finally {
            vllm.maxModelLen = 4096;
            workerHealth.health();
        }
    }

    @Test
    void withoutMaxTokensCompletionsGet16AndAChatTheRestOfTheContextBesideItsPromptsBound() throws Exception {
        workerHealth.health();

        var completion = post("""
                {"model": "%s", "prompt": "one two"}""".formatted(MODEL));
        var chat = post("/v1/chat/completions", """
                {"model": "%s", "messages": [{"role": "user", "content": "one two"}]}""".formatted(MODEL));

        assertThat(completion.statusCode()).as(completion.body()).isEqualTo(200);
        assertThat(chat.statusCode()).as(chat.body()).isEqualTo(200);
        assertThat(sentMaxTokens("/v1/completions")).containsExactly(16);
        // the chat's bound: its template as measured (0 + 3 a message) + "user" + "one two" = 14
        assertThat(sentMaxTokens("/v1/chat/completions")).containsExactly(4096 - 14);
    }

    private HttpResponse<String> post(String body) throws Exception {
        return post("/v1/completions", body);
    }

    private HttpResponse<String> post(String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + path))
                        .header("Content-Type", "application/json")
                        .header("Authorization", gateway.bearer(user))
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
