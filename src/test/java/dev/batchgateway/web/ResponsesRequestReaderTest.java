package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.ServiceTier;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.http.HttpStatus;
import tools.jackson.databind.json.JsonMapper;

/** {@code /v1/responses} bodies read as the chats they are, with refusals that name the Responses API's own fields. */
class ResponsesRequestReaderTest {

    private static final int MAX_PROMPT_CHARS = 100;
    private static final int MAX_TOKENS = 256;

    private final JsonMapper json = JsonMapper.builder().build();
    private final OpenAiRequestReader chats = new OpenAiRequestReader(
            new CompletionRequestReader(MAX_PROMPT_CHARS, MAX_TOKENS, List.of("m")), MAX_TOKENS, List.of("m"));
    private final ResponsesRequestReader reader = new ResponsesRequestReader(body -> chats.chat(body, "default"));

    private ResponsesRequestReader.Request read(String body) {
        return reader.read(json.readTree(body));
    }

    private static List<Prompt.Message> messages(ResponsesRequestReader.Request request) {
        return ((Prompt.Chat) request.chat().prompts().getFirst()).messages();
    }

    @Test
    void aStringInputIsOneUserMessageWithTheChatsDefaults() {
        var request = read("""
                {"model": "m", "input": "the quick brown fox"}""");

        assertThat(messages(request)).containsExactly(new Prompt.Message("user", "the quick brown fox"));
        assertThat(request.chat().parameters().maxTokens()).isEqualTo(MAX_TOKENS);
        assertThat(request.chat().stream()).isFalse();
        assertThat(request.chat().serviceTier()).isEqualTo(ServiceTier.DEFAULT);
        assertThat(request.instructions()).isNull();
        assertThat(request.maxOutputTokens()).isNull();
    }

    @Test
    void instructionsComeFirstAndMessagesOfTextPartsFollowAsTheyCame() {
        var request = read("""
                {"model": "m", "instructions": "be terse", "max_output_tokens": 7, "temperature": 0.5, "top_p": 0.9,
                 "service_tier": "flex", "stream": true,
                 "input": [
                   {"role": "developer", "content": "answer in French"},
                   {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one "},
                                                                   {"type": "input_text", "text": "two"}]},
                   {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": "deux", "annotations": [], "logprobs": []}]},
                   {"role": "user", "content": "three"}]}""");

        assertThat(messages(request)).containsExactly(
                new Prompt.Message("system", "be terse"),
                new Prompt.Message("system", "answer in French"),
                new Prompt.Message("user", "one two"),
                new Prompt.Message("assistant", "deux"),
                new Prompt.Message("user", "three"));
        assertThat(request.chat().parameters().maxTokens()).isEqualTo(7);
        assertThat(request.chat().parameters().temperature()).isEqualTo(0.5);
        assertThat(request.chat().parameters().topP()).isEqualTo(0.9);
        assertThat(request.chat().serviceTier()).isEqualTo(ServiceTier.FLEX);
        assertThat(request.chat().stream()).isTrue();
        assertThat(request.instructions()).isEqualTo("be terse");
        assertThat(request.maxOutputTokens()).isEqualTo(7);
    }

    @Test
    void openAisDefaultsOfTheStatefulFeaturesAreAccepted() {
        var request = read("""
                {"model": "m", "input": "hi", "store": false, "background": false, "tools": [], "tool_choice": "none",
                 "parallel_tool_calls": true, "include": [], "metadata": {}, "truncation": "disabled",
                 "text": {"format": {"type": "text"}}, "top_logprobs": 0, "previous_response_id": null,
                 "conversation": null, "reasoning": null}""");

        assertThat(messages(request)).containsExactly(new Prompt.Message("user", "hi"));
    }

    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource(delimiter = '|', value = {
            "previous_response_id | \"resp_123\"                                | keeps no responses",
            "conversation         | \"conv_123\"                                | keeps no conversations",
            "store                | true                                      | stores no responses",
            "background           | true                                      | does not keep",
            "tools                | [{\"type\": \"web_search\"}]              | tools are not supported",
            "tool_choice          | \"required\"                              | tools are not supported",
            "include              | [\"reasoning.encrypted_content\"]         | not supported",
            "text                 | {\"format\": {\"type\": \"json_object\"}} | not supported",
            "reasoning            | {\"effort\": \"low\"}                     | Unrecognized request argument",
            "prompt               | {\"id\": \"pmpt_1\"}                      | Unrecognized request argument",
            "max_tool_calls       | 3                                         | Unrecognized request argument",
            "messages             | []                                        | Unrecognized request argument",
    })
    void aStatefulOrUnknownFeatureIs400NamingItsField(String field, String value, String said) {
        assertThatThrownBy(() -> read("""
                {"model": "m", "input": "hi", "%s": %s}""".formatted(field, value)))
                .isInstanceOfSatisfying(OpenAiError.class, e -> {
                    assertThat(e.status).isEqualTo(HttpStatus.BAD_REQUEST);
                    assertThat(e.type).isEqualTo("invalid_request_error");
                    assertThat(e.param).isEqualTo(field);
                    assertThat(e.getMessage()).contains(field).contains(said);
                });
    }

    @ParameterizedTest(name = "{1}")
    @CsvSource(delimiter = '|', value = {
            "{\"model\": \"m\"}                                                             | input",
            "{\"model\": \"m\", \"input\": []}                                              | input",
            "{\"model\": \"m\", \"input\": 7}                                               | input",
            "{\"model\": \"m\", \"input\": [\"hi\"]}                                        | input[0]",
            "{\"model\": \"m\", \"input\": [{\"role\": \"user\", \"content\": \"a\"}, {\"type\": \"function_call_output\", \"call_id\": \"c\", \"output\": \"x\"}]} | input[1]",
            "{\"model\": \"m\", \"input\": [{\"type\": \"item_reference\", \"id\": \"msg_1\"}]} | input[0]",
            "{\"model\": \"m\", \"input\": [{\"role\": \"tool\", \"content\": \"a\"}]}      | input[0].role",
            "{\"model\": \"m\", \"input\": [{\"role\": \"user\", \"content\": \"a\", \"name\": \"x\"}]} | input[0].name",
            "{\"model\": \"m\", \"input\": [{\"role\": \"user\", \"content\": 3}]}         | input[0].content",
            "{\"model\": \"m\", \"input\": [{\"role\": \"user\", \"content\": [{\"type\": \"input_text\", \"text\": \"a\"}, {\"type\": \"input_image\", \"image_url\": \"http://x/y.png\"}]}]} | input[0].content[1]",
            "{\"model\": \"m\", \"input\": [{\"role\": \"user\", \"content\": [{\"type\": \"input_text\", \"text\": \"a\", \"cache\": true}]}]} | input[0].content[0].cache",
            "{\"model\": \"m\", \"input\": \"hi\", \"instructions\": [\"be terse\"]}        | instructions",
    })
    void anInputThatIsNotMessagesOfTextIs400NamingWhereItIsWrong(String body, String param) {
        assertThatThrownBy(() -> read(body))
                .isInstanceOfSatisfying(OpenAiError.class, e -> {
                    assertThat(e.status).isEqualTo(HttpStatus.BAD_REQUEST);
                    assertThat(e.param).isEqualTo(param);
                    assertThat(e.getMessage()).contains(param);
                });
    }

    @Test
    void theChatReadersRefusalsNameTheResponsesFields() {
        String tooLong = "x".repeat(MAX_PROMPT_CHARS + 1);

        assertRefused("""
                {"model": "m", "input": "hi", "max_output_tokens": %d}""".formatted(MAX_TOKENS + 1), "max_output_tokens");
        assertRefused("""
                {"model": "m", "input": "hi", "max_output_tokens": 0}""", "max_output_tokens");
        assertRefused("""
                {"model": "m", "input": "%s"}""".formatted(tooLong), "input");
        assertRefused("""
                {"model": "m", "input": "hi", "instructions": "%s"}""".formatted(tooLong), "instructions");
        assertRefused("""
                {"model": "m", "instructions": "be terse", "input": [{"role": "user", "content": "hi"},
                 {"role": "user", "content": [{"type": "input_text", "text": "%s"}]}]}""".formatted(tooLong), "input[1].content");
        assertRefused("""
                {"model": "m", "input": [{"role": "user", "content": " "}]}""", "input");
        assertRefused("""
                {"model": "m", "input": "hi", "temperature": 3}""", "temperature");
        assertRefused("""
                {"model": "m", "input": "hi", "service_tier": "priority"}""", "service_tier");
        assertRefused("""
                {"input": "hi"}""", "model");
    }

    @Test
    void anItemReferenceSaysHowToSendTheEarlierAnswerInstead() {
        assertThatThrownBy(() -> read("""
                {"model": "m", "input": [{"role": "user", "content": "hi"}, {"type": "item_reference", "id": "msg_1"}]}"""))
                .isInstanceOfSatisfying(OpenAiError.class, e -> {
                    assertThat(e.param).isEqualTo("input[1]");
                    assertThat(e.getMessage()).contains("keeps none", "store: false");
                });
    }

    @Test
    void anUnknownModelIsModelNotFound() {
        assertThatThrownBy(() -> read("""
                {"model": "gpt-4o", "input": "hi"}"""))
                .isInstanceOfSatisfying(OpenAiError.class, e -> {
                    assertThat(e.status).isEqualTo(HttpStatus.NOT_FOUND);
                    assertThat(e.code).isEqualTo("model_not_found");
                });
    }

    /** Whatever the body holds, it is read or refused in OpenAI's shape: never another exception (a 500). */
    @Property(tries = 300)
    void anyBodyIsReadOrRefusedAsABadRequestNeverAnythingElse(@ForAll("fields") String field, @ForAll("json") String value,
            @ForAll("json") String input) {
        String body = """
                {"model": "m", "input": %s, "%s": %s}""".formatted(input, field, value);
        try {
            read(body);
        } catch (OpenAiError refused) {
            assertThat(refused.status.is4xxClientError()).as(body).isTrue();
            assertThat(refused.getMessage()).as(body).isNotBlank();
        }
    }

    @Provide
    Arbitrary<String> fields() {
        return Arbitraries.of("instructions", "max_output_tokens", "temperature", "top_p", "service_tier", "stream",
                "store", "tools", "text", "metadata", "include", "tool_choice", "previous_response_id", "input", "x");
    }

    @Provide
    Arbitrary<String> json() {
        Arbitrary<String> leaf = Arbitraries.of("null", "true", "false", "0", "-1", "1.5", "1e400", "\"\"", "\" \"",
                "\"hi\"", "\"\\ud800\"", "\"input_text\"", "\"user\"", "[]", "{}");
        return Arbitraries.recursive(() -> leaf, inner -> Arbitraries.oneOf(
                inner.list().ofMaxSize(3).map(items -> "[" + String.join(", ", items) + "]"),
                Arbitraries.of("role", "content", "type", "text", "id", "name")
                        .flatMap(key -> inner.map(v -> "{\"" + key + "\": " + v + "}")),
                inner.flatMap(text -> Arbitraries.of("user", "assistant", "developer", "tool").map(role ->
                        "[{\"role\": \"" + role + "\", \"content\": [{\"type\": \"input_text\", \"text\": " + text + "}]}]"))),
                3);
    }

    private void assertRefused(String body, String param) {
        assertThatThrownBy(() -> read(body))
                .as(body)
                .isInstanceOfSatisfying(OpenAiError.class, e -> {
                    assertThat(e.status).isEqualTo(HttpStatus.BAD_REQUEST);
                    assertThat(e.param).isEqualTo(param);
                    assertThat(e.getMessage()).doesNotContain("messages", "max_completion_tokens");
                    if (!param.equals("input")) {
                        assertThat(e.getMessage()).contains(param);
                    }
                });
    }
}
