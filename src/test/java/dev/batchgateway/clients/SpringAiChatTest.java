package dev.batchgateway.clients;

import static org.assertj.core.api.Assertions.assertThat;

import com.openai.errors.RateLimitException;
import dev.batchgateway.GatewayClient;
import dev.batchgateway.SimulatedGatewayTest;
import dev.batchgateway.UsageRows;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * Spring AI's OpenAI chat model (spring-ai-openai, on the official OpenAI Java SDK) pointed at the gateway's {@code /v1},
 * on its defaults apart from base URL, key and model, as a Spring application would build it: a call and a stream, each
 * answered by the simulated worker's rule (the last message's words in reverse) and billed to the key's user exactly.
 * On its defaults it sends only {@code model} and {@code messages}, and for a stream {@code stream_options.include_usage}.
 */
// the settings of UsageApiTest, KeyTermsApiTest and the other client tests: one running gateway for them all
@SimulatedGatewayTest
class SpringAiChatTest {

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    private long user;
    private OpenAiChatModel chat;

    @BeforeEach
    void connect() {
        user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
        chat = OpenAiChatModel.builder()
                .options(OpenAiChatOptions.builder()
                        .baseUrl(gateway.uri("/v1").toString())
                        .apiKey(gateway.key(user))
                        .model("simulated")
                        .build())
                .build();
    }

    @Test
    void aCallIsAnsweredAndBilledToTheKeysUser() {
        // When a Spring application asks with a system and a user message
        ChatResponse answer = chat.call(new Prompt(List.of(
                new SystemMessage("You answer backwards."), new UserMessage("one two three four"))));

        // Then the answer is the last message's words in reverse, finished, with the worker's counts
        assertThat(answer.getResult().getOutput().getText()).isEqualTo("four three two one");
        assertThat(answer.getResult().getMetadata().getFinishReason()).isEqualToIgnoringCase("stop");
        var usage = answer.getMetadata().getUsage();
        assertThat(usage.getPromptTokens()).isEqualTo(3 + 4);
        assertThat(usage.getCompletionTokens()).isEqualTo(4);
        assertThat(usage.getTotalTokens()).isEqualTo(3 + 4 + 4);

        // And the key's user was billed exactly that
        UsageRows.await(jdbc, user, 1);
        assertThat(UsageRows.billed(jdbc, user)).containsExactly(new UsageRows.Row("simulated", 7, 4, "served"));
    }

    @Test
    void aStreamArrivesInPiecesWithItsUsageAndIsBilledToTheKeysUser() {
        // When a Spring application streams an answer
        List<ChatResponse> chunks = chat.stream(new Prompt("stream these five words please"))
                .collectList()
                .block(Duration.ofSeconds(30));

        // Then the pieces make the whole answer, and the last chunk carries the usage Spring AI asked for by default
        assertThat(chunks).hasSizeGreaterThan(2);
        String text = text(chunks);
        assertThat(text).isEqualTo("please words five these stream");
        var usage = chunks.getLast().getMetadata().getUsage();
        assertThat(usage.getPromptTokens()).isEqualTo(5);
        assertThat(usage.getCompletionTokens()).isEqualTo(5);

        // And the key's user was billed exactly that
        UsageRows.await(jdbc, user, 1);
        assertThat(UsageRows.billed(jdbc, user)).containsExactly(new UsageRows.Row("simulated", 5, 5, "served"));
    }

    @Test
    void aStreamWithItsStreamOptionsSetIsAnsweredThoughTheyAskNotToObfuscate() {
        // Given a model with stream options, as the property spring.ai.openai.chat.stream-options.include-usage sets
        // them: Spring AI then also sends "include_obfuscation": false
        var withOptions = OpenAiChatModel.builder()
                .options(OpenAiChatOptions.builder()
                        .baseUrl(gateway.uri("/v1").toString())
                        .apiKey(gateway.key(user))
                        .model("simulated")
                        .streamOptions(OpenAiChatOptions.StreamOptions.builder().includeUsage(true).build())
                        .build())
                .build();

        // When it streams
        List<ChatResponse> chunks = withOptions.stream(new Prompt("with options")).collectList().block(Duration.ofSeconds(30));

        // Then the answer and its usage came
        String text = text(chunks);
        assertThat(text).isEqualTo("options with");
        assertThat(chunks.getLast().getMetadata().getUsage().getCompletionTokens()).isEqualTo(2);
    }

    @Test
    void aDailyLimitIsNotRetriedByItsThreeDefaultRetries() {
        // Given a user whose day's limit is smaller than any request
        ClientLimits.awaitDayWithAMinuteLeft();
        gateway.limit(user, "{\"tokens_per_day\": 10, \"tokens_per_month\": null, \"requests_per_minute\": null}");
        double before = gateway.rejections("tokens_per_day");

        // When Spring AI, with its three retries, calls (given 30 s, not until midnight)
        Throwable failure = ClientLimits.failureWithin(Duration.ofSeconds(30), () -> chat.call(new Prompt("hi")));

        // Then it gave up with the SDK's 429, having sent one request (x-should-retry: false)
        assertThat(failure).isInstanceOf(RateLimitException.class);
        assertThat(gateway.rejections("tokens_per_day") - before).as("requests refused by the day's limit").isEqualTo(1);
    }

    /** The text of a streamed answer: its chunks' pieces, the usage chunk (no result) adding nothing. */
    private static String text(List<ChatResponse> chunks) {
        return chunks.stream()
                .map(ChatResponse::getResult)
                .filter(Objects::nonNull)
                .map(generation -> Objects.requireNonNullElse(generation.getOutput().getText(), ""))
                .reduce("", String::concat);
    }
}
