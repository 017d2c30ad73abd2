package dev.batchgateway.clients;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.GatewayClient;
import dev.batchgateway.SimulatedGatewayTest;
import dev.batchgateway.UsageRows;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.RateLimitException;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.output.FinishReason;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * LangChain4j's {@code OpenAiChatModel} and {@code OpenAiStreamingChatModel} (langchain4j-open-ai, on the JDK's HTTP
 * client) pointed at the gateway's {@code /v1}, on their defaults apart from base URL, key and model name: answered by
 * the simulated worker's rule (the last message's words in reverse) and billed to the key's user exactly. On its
 * defaults LangChain4j sends {@code model}, {@code messages} and {@code stream} (false or true, then with
 * {@code stream_options.include_usage}), over HTTP/1.1 with an {@code Upgrade: h2c} offer the gateway declines.
 */
// the settings of UsageApiTest, KeyTermsApiTest and the other client tests: one running gateway for them all
@SimulatedGatewayTest
class LangChain4jChatTest {

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    private long user;

    @BeforeEach
    void newUser() {
        user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
    }

    @Test
    void aChatIsAnsweredAndBilledToTheKeysUser() {
        var model = OpenAiChatModel.builder().baseUrl(gateway.uri("/v1").toString()).apiKey(gateway.key(user))
                .modelName("simulated").build();

        // When an application chats with a system and a user message
        ChatResponse answer = model.chat(SystemMessage.from("You answer backwards."), UserMessage.from("one two three four"));

        // Then the answer is the last message's words in reverse, finished, with the worker's counts
        assertThat(answer.aiMessage().text()).isEqualTo("four three two one");
        assertThat(answer.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(answer.tokenUsage().inputTokenCount()).isEqualTo(3 + 4);
        assertThat(answer.tokenUsage().outputTokenCount()).isEqualTo(4);
        assertThat(answer.tokenUsage().totalTokenCount()).isEqualTo(3 + 4 + 4);

        // And the key's user was billed exactly that
        UsageRows.await(jdbc, user, 1);
        assertThat(UsageRows.billed(jdbc, user)).containsExactly(new UsageRows.Row("simulated", 7, 4, "served"));
    }

    @Test
    void aStreamedChatArrivesInPiecesWithItsUsageAndIsBilledToTheKeysUser() throws Exception {
        var model = OpenAiStreamingChatModel.builder().baseUrl(gateway.uri("/v1").toString()).apiKey(gateway.key(user))
                .modelName("simulated").build();
        List<String> pieces = new CopyOnWriteArrayList<>();
        var done = new CompletableFuture<ChatResponse>();

        // When an application streams an answer
        model.chat("stream these five words please", new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String piece) {
                pieces.add(piece);
            }

            @Override
            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        ChatResponse answer = done.get(30, TimeUnit.SECONDS);

        // Then it came in pieces that make the whole answer, and the usage LangChain4j asked for by default came last
        assertThat(pieces).hasSizeGreaterThan(1);
        assertThat(String.join("", pieces)).isEqualTo("please words five these stream");
        assertThat(answer.aiMessage().text()).isEqualTo("please words five these stream");
        assertThat(answer.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(answer.tokenUsage().inputTokenCount()).isEqualTo(5);
        assertThat(answer.tokenUsage().outputTokenCount()).isEqualTo(5);

        // And the key's user was billed exactly that
        UsageRows.await(jdbc, user, 1);
        assertThat(UsageRows.billed(jdbc, user)).containsExactly(new UsageRows.Row("simulated", 5, 5, "served"));
    }

    /**
     * LangChain4j retries a 429 twice, after 0.5 s and 0.75 s (with jitter), reading neither {@code x-should-retry} nor
     * {@code Retry-After}: a day's limit costs it three refused requests and a second or two, not a wait until midnight.
     */
    @Test
    void aDailyLimitEndsInARateLimitErrorAfterItsTwoOwnRetries() {
        // Given a user whose day's limit is smaller than any request
        ClientLimits.awaitDayWithAMinuteLeft();
        gateway.limit(user, "{\"tokens_per_day\": 10, \"tokens_per_month\": null, \"requests_per_minute\": null}");
        var model = OpenAiChatModel.builder().baseUrl(gateway.uri("/v1").toString()).apiKey(gateway.key(user))
                .modelName("simulated").build();
        double before = gateway.rejections("tokens_per_day");

        // When LangChain4j, with its default two retries, chats (given 30 s, not until midnight)
        Throwable failure = ClientLimits.failureWithin(Duration.ofSeconds(30), () -> model.chat("hi"));

        // Then it gave up with its rate-limit error, the message the gateway's, after three requests
        assertThat(failure).isInstanceOf(RateLimitException.class).hasMessageContaining("tokens_per_day");
        assertThat(gateway.rejections("tokens_per_day") - before).as("requests refused by the day's limit").isEqualTo(3);
    }
}
