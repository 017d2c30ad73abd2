package dev.batchgateway.clients;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.GatewayClient;
import dev.batchgateway.UsageRows;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.ai.embedding.Embedding;
import org.springframework.ai.embedding.EmbeddingRequest;
import org.springframework.ai.embedding.EmbeddingResponse;
import org.springframework.ai.openai.OpenAiEmbeddingModel;
import org.springframework.ai.openai.OpenAiEmbeddingOptions;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * Spring AI's OpenAI embedding model (spring-ai-openai, on the official OpenAI Java SDK) pointed at the gateway's
 * {@code /v1}, on its defaults apart from base URL, key and model: it sends {@code input} as a list and {@code
 * "encoding_format": "base64"}, and decodes the vectors itself. They are the simulated worker's (see {@link
 * SimulatedVectors}), and each input is billed to the key's user as its prompt tokens.
 */
@SimulatedEmbeddingGatewayTest
class SpringAiEmbeddingTest {

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    private long user;
    private OpenAiEmbeddingModel embeddings;

    @BeforeEach
    void connect() {
        user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
        embeddings = new OpenAiEmbeddingModel(OpenAiEmbeddingOptions.builder()
                .baseUrl(gateway.uri("/v1").toString())
                .apiKey(gateway.key(user))
                .model(SimulatedEmbeddingGatewayTest.MODEL)
                .build());
    }

    @Test
    void aTextIsEmbeddedAsTheWorkerEmbedsItAndBilledToTheKeysUser() {
        float[] vector = embeddings.embed("the quick brown fox");

        assertThat(vector).containsExactly(SimulatedVectors.of("the quick brown fox"));
        UsageRows.await(jdbc, user, 1);
        assertThat(UsageRows.billed(jdbc, user)).containsExactly(new UsageRows.Row(SimulatedEmbeddingGatewayTest.MODEL, 4, 0, "served"));
    }

    @Test
    void severalTextsComeBackInTheirOrderWithTheirUsageAndARowEach() {
        List<String> texts = List.of("one", "two words", "and now three", "one");

        EmbeddingResponse answer = embeddings.call(new EmbeddingRequest(texts, null));

        // each vector in its text's place, equal texts embedded alike
        assertThat(answer.getResults()).extracting(Embedding::getIndex).containsExactly(0, 1, 2, 3);
        for (int i = 0; i < texts.size(); i++) {
            assertThat(answer.getResults().get(i).getOutput()).as("the vector of %s", texts.get(i))
                    .containsExactly(SimulatedVectors.of(texts.get(i)));
        }
        assertThat(answer.getMetadata().getUsage().getPromptTokens()).isEqualTo(1 + 2 + 3 + 1);
        UsageRows.await(jdbc, user, texts.size());
        assertThat(UsageRows.billed(jdbc, user)).containsExactlyInAnyOrderElementsOf(SimulatedVectors.billed(texts));
    }
}
