package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.models.responses.EasyInputMessage;
import com.openai.models.responses.Response;
import com.openai.models.responses.ResponseCreateParams;
import com.openai.models.responses.ResponseInputContent;
import com.openai.models.responses.ResponseInputItem;
import com.openai.models.responses.ResponseInputText;
import com.openai.models.responses.ResponseStatus;
import com.openai.models.responses.ResponseStreamEvent;
import com.openai.models.responses.ResponseUsage;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code POST /v1/responses}, driven by the official OpenAI Java SDK's {@code responses()} against the whole gateway
 * with the simulated worker (a chat's answer is its last message's words reversed; every message's words count as
 * prompt tokens): answered as OpenAI's Response object or its events, billed as the chat it is.
 */
@SimulatedGatewayTest
class ResponsesApiTest {

    private static final String MODEL = "simulated";

    @LocalServerPort
    int port;

    @Autowired
    JdbcClient jdbc;

    @Autowired
    GatewayClient gateway;

    private final JsonMapper json = JsonMapper.builder().build();
    private OpenAIClient openAi;
    private long user;

    @BeforeEach
    void connect() {
        user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        openAi = OpenAIOkHttpClient.builder().baseUrl("http://localhost:" + port + "/v1").apiKey(gateway.key(user))
                .maxRetries(0).build();
    }

    @Test
    void aStringInputIsAnsweredAsOpenAisResponseAndBilledAsAChat() {
        // When the SDK asks for a response to a string
        Response response = openAi.responses().create(ResponseCreateParams.builder()
                .model(MODEL)
                .input("the quick brown fox")
                .build());

        // Then it is OpenAI's Response object, whole by the SDK's own validation, with the chat's answer
        response.validate();
        assertThat(response.id()).startsWith("resp_");
        assertThat(response.status()).hasValue(ResponseStatus.COMPLETED);
        assertThat(response.model().asString()).isEqualTo(MODEL);
        assertThat(text(response)).isEqualTo("fox brown quick the");
        ResponseUsage usage = response.usage().orElseThrow();
        assertThat(usage.inputTokens()).isEqualTo(4);
        assertThat(usage.outputTokens()).isEqualTo(4);
        assertThat(usage.totalTokens()).isEqualTo(8);

        // And its usage row is the chat's, with the counts the SDK reports
        assertBilled(List.of(usage), "default");
    }

    @Test
    void messagesOfTextPartsWithInstructionsAreOneChatCutAtMaxOutputTokens() {
        // When the SDK sends instructions and a conversation whose user message is made of input_text parts
        var parts = EasyInputMessage.builder().role(EasyInputMessage.Role.USER).contentOfResponseInputMessageContentList(List.of(
                        ResponseInputContent.ofInputText(ResponseInputText.builder().text("one two ").build()),
                        ResponseInputContent.ofInputText(ResponseInputText.builder().text("three four").build())))
                .build();
        var earlier = EasyInputMessage.builder().role(EasyInputMessage.Role.ASSISTANT).content("an earlier answer").build();
        Response response = openAi.responses().create(ResponseCreateParams.builder()
                .model(MODEL)
                .instructions("be terse")
                .inputOfResponse(List.of(
                        ResponseInputItem.ofEasyInputMessage(earlier),
                        ResponseInputItem.ofEasyInputMessage(parts)))
                .maxOutputTokens(2L)
                .build());

        // Then the last message is answered, cut at two tokens, which OpenAI calls incomplete
        response.validate();
        assertThat(text(response)).isEqualTo("four three");
        assertThat(response.status()).hasValue(ResponseStatus.INCOMPLETE);
        assertThat(response.incompleteDetails().orElseThrow().reason())
                .hasValue(Response.IncompleteDetails.Reason.MAX_OUTPUT_TOKENS);
        assertThat(response.instructions().orElseThrow().asString()).isEqualTo("be terse");
        assertThat(response.maxOutputTokens()).hasValue(2L);
        // And every message's words count: the instructions (2), the earlier answer (3), the parts (4)
        ResponseUsage usage = response.usage().orElseThrow();
        assertThat(usage.inputTokens()).isEqualTo(2 + 3 + 4);
        assertThat(usage.outputTokens()).isEqualTo(2);
        assertBilled(List.of(usage), "default");
    }

    @Test
    void aStreamedResponseArrivesAsOpenAisEventsWithTheUsageInItsCompletedEvent() {
        // When the SDK streams a response in the flex tier
        List<ResponseStreamEvent> events;
        try (var stream = openAi.responses().createStreaming(ResponseCreateParams.builder()
                .model(MODEL)
                .input("stream this answer please")
                .serviceTier(ResponseCreateParams.ServiceTier.FLEX)
                .build())) {
            events = stream.stream().toList();
        }

        // Then it begins with response.created, its deltas are the answer, and it ends with response.completed
        assertThat(events.getFirst().created()).isPresent();
        String text = events.stream().flatMap(event -> event.outputTextDelta().stream()).map(delta -> delta.delta())
                .reduce("", String::concat);
        assertThat(text).isEqualTo("please answer this stream");
        assertThat(events.stream().flatMap(event -> event.outputTextDone().stream()).map(done -> done.text()))
                .containsExactly(text);
        Response completed = events.getLast().completed().orElseThrow().response();
        completed.validate();
        assertThat(text(completed)).isEqualTo(text);
        assertThat(completed.serviceTier()).hasValue(Response.ServiceTier.FLEX);
        ResponseUsage usage = completed.usage().orElseThrow();
        assertThat(usage.inputTokens()).isEqualTo(4);
        assertThat(usage.outputTokens()).isEqualTo(4);

        // And the usage row is the completed event's, in the tier asked for
        assertBilled(List.of(usage), "flex");
    }

    @Test
    void theStreamsEventsComeInOpenAisOrderNumberedFromZero() throws Exception {
        // When a response is streamed over plain HTTP
        var answer = gateway.post("/v1/responses", gateway.bearer(user), """
                {"model": "%s", "input": "one two", "stream": true}""".formatted(MODEL));

        // Then its events are OpenAI's, in OpenAI's order, each numbered one after the other
        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
        assertThat(answer.headers().firstValue("Content-Type")).hasValueSatisfying(type -> assertThat(type).startsWith("text/event-stream"));
        List<String> frames = List.of(answer.body().split("\n\n"));
        List<JsonNode> events = frames.stream()
                .map(frame -> json.readTree(frame.substring(frame.indexOf("\ndata: ") + "\ndata: ".length()))).toList();
        // each event is named on its event: line by its type, as OpenAI sends them
        for (int i = 0; i < frames.size(); i++) {
            assertThat(frames.get(i)).startsWith("event: " + events.get(i).get("type").asString() + "\ndata: {");
        }
        assertThat(events).extracting(event -> event.get("type").asString()).containsExactly(
                "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
                "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
                "response.content_part.done", "response.output_item.done", "response.completed");
        for (int i = 0; i < events.size(); i++) {
            assertThat(events.get(i).get("sequence_number").asInt()).as(events.get(i).toString()).isEqualTo(i);
        }
        // And the message's id is the same in every event that names it
        String itemId = events.get(2).at("/item/id").asString();
        assertThat(itemId).startsWith("msg_");
        assertThat(events.stream().filter(event -> event.has("item_id")).map(event -> event.get("item_id").asString()))
                .hasSize(5).containsOnly(itemId);
        assertThat(events.getLast().at("/response/output/0/content/0/annotations").isArray()).isTrue();
    }

    @Test
    void statefulFeaturesAreTheSdksBadRequestNamingTheField() {
        assertThatThrownBy(() -> openAi.responses().create(ResponseCreateParams.builder()
                        .model(MODEL).input("hi").previousResponseId("resp_0123").build()))
                .isInstanceOfSatisfying(BadRequestException.class, e -> {
                    assertThat(e.param()).hasValue("previous_response_id");
                    assertThat(e.getMessage()).contains("keeps no responses");
                });
        assertThatThrownBy(() -> openAi.responses().create(ResponseCreateParams.builder()
                        .model(MODEL).input("hi").store(true).build()))
                .isInstanceOfSatisfying(BadRequestException.class, e -> assertThat(e.param()).hasValue("store"));
        assertThatThrownBy(() -> openAi.responses().create(ResponseCreateParams.builder()
                        .model(MODEL).input("hi").maxOutputTokens(1_000_000L).build()))
                .isInstanceOfSatisfying(BadRequestException.class, e -> assertThat(e.param()).hasValue("max_output_tokens"));

        // And nothing was billed
        assertThat(UsageRows.of(jdbc, user)).isZero();
    }

    @Test
    void toolsAndNonTextInputAre400InOpenAisShapeNamingTheField() throws Exception {
        var tools = gateway.post("/v1/responses", gateway.bearer(user), """
                {"model": "%s", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}}]}"""
                .formatted(MODEL));
        var image = gateway.post("/v1/responses", gateway.bearer(user), """
                {"model": "%s", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x/y.png"}]}]}"""
                .formatted(MODEL));

        for (var answer : List.of(tools, image)) {
            assertThat(answer.statusCode()).as(answer.body()).isEqualTo(400);
            assertThat(answer.headers().firstValue("Content-Type")).hasValue("application/json");
            assertThat(json.readTree(answer.body()).at("/error/type").asString()).isEqualTo("invalid_request_error");
        }
        assertThat(json.readTree(tools.body()).at("/error/param").asString()).isEqualTo("tools");
        assertThat(json.readTree(image.body()).at("/error/param").asString()).isEqualTo("input[0].content[0]");
    }

    @Test
    void anUnknownModelIsTheSdksNotFoundEvenWhenStreamed() {
        var streamed = ResponseCreateParams.builder().model("gpt-4o").input("hi").build();

        assertThatThrownBy(() -> {
            try (var stream = openAi.responses().createStreaming(streamed)) {
                stream.stream().toList();
            }
        }).isInstanceOfSatisfying(NotFoundException.class, e -> assertThat(e.code()).hasValue("model_not_found"));
    }

    private static String text(Response response) {
        return response.output().getFirst().asMessage().content().getFirst().asOutputText().text();
    }

    private void assertBilled(List<ResponseUsage> usages, String tier) {
        UsageRows.await(jdbc, user, usages.size());
        assertThat(jdbc.sql("SELECT prompt_tokens, completion_tokens, service_tier FROM token_usage WHERE user_id = ?")
                        .param(user).query((rs, n) -> List.<Object>of(rs.getLong(1), rs.getLong(2), rs.getString(3))).list())
                .containsExactlyInAnyOrderElementsOf(usages.stream()
                        .map(usage -> List.<Object>of(usage.inputTokens(), usage.outputTokens(), tier)).toList());
    }
}
