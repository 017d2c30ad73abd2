package dev.batchgateway.clients;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.GatewayClient;
import dev.batchgateway.UsageRows;
import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.openai.OpenAiEmbeddingModel;
import dev.langchain4j.model.output.Response;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * LangChain4j's {@code OpenAiEmbeddingModel} pointed at the gateway's {@code /v1}, on its defaults apart from base URL,
 * key and model name: it sends {@code model} and {@code input} as a list (floats, no {@code encoding_format}). The
 * vectors are the simulated worker's (see {@link SimulatedVectors}), and each input is billed to the key's user as its
 * prompt tokens.
 */
@SimulatedEmbeddingGatewayTest
class LangChain4jEmbeddingTest {

    @Autowired
    GatewayClient gateway;

    @Autowired
    JdbcClient jdbc;

    private long user;
    private OpenAiEmbeddingModel embeddings;

    @BeforeEach
    void connect() {
        user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
        embeddings = OpenAiEmbeddingModel.builder()
                .baseUrl(gateway.uri("/v1").toString())
                .apiKey(gateway.key(user))
                .modelName(SimulatedEmbeddingGatewayTest.MODEL)
                .build();
    }

    @Test
    void aTextIsEmbeddedAsTheWorkerEmbedsItAndBilledToTheKeysUser() {
        Response<Embedding> answer = embeddings.embed("the quick brown fox");

        assertThat(answer.content().vector()).containsExactly(SimulatedVectors.of("the quick brown fox"));
        assertThat(answer.tokenUsage().inputTokenCount()).isEqualTo(4);
        UsageRows.await(jdbc, user, 1);
        assertThat(UsageRows.billed(jdbc, user)).containsExactly(new UsageRows.Row(SimulatedEmbeddingGatewayTest.MODEL, 4, 0, "served"));
    }

    @Test
    void segmentsComeBackInTheirOrderWithTheirUsageAndARowEach() {
        List<String> texts = List.of("one", "two words", "and now three", "one");

        Response<List<Embedding>> answer = embeddings.embedAll(texts.stream().map(TextSegment::from).toList());

        // each vector in its segment's place, equal segments embedded alike
        assertThat(answer.content()).hasSameSizeAs(texts);
        for (int i = 0; i < texts.size(); i++) {
            assertThat(answer.content().get(i).vector()).as("the vector of %s", texts.get(i))
                    .containsExactly(SimulatedVectors.of(texts.get(i)));
        }
        assertThat(answer.tokenUsage().inputTokenCount()).isEqualTo(1 + 2 + 3 + 1);
        UsageRows.await(jdbc, user, texts.size());
        assertThat(UsageRows.billed(jdbc, user)).containsExactlyInAnyOrderElementsOf(SimulatedVectors.billed(texts));
    }
}
