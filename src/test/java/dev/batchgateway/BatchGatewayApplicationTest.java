package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.WorkerApi;
import dev.batchgateway.completion.WorkerOutcome;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.simple.JdbcClient;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The whole gateway on a random port: simulated worker, real PostgreSQL, real HTTP. */
@GatewayApplicationTest(properties = {"gateway.worker.type=simulated", "gateway.batch.size=8", "gateway.batch.max-wait=30s"})
@Import(BatchGatewayApplicationTest.WorkerSpyConfiguration.class)
class BatchGatewayApplicationTest {

    /** Records the batches the real (simulated) worker is given, without changing what it does. */
    @TestConfiguration
    static class WorkerSpyConfiguration {
        static final List<Batch> batches = new CopyOnWriteArrayList<>();

        @Bean
        static BeanPostProcessor spyOnWorker() {
            return new BeanPostProcessor() {
                @Override
                public Object postProcessAfterInitialization(Object bean, String name) {
                    if (!(bean instanceof WorkerApi worker)) {
                        return bean;
                    }
                    return new WorkerApi() {
                        @Override
                        public List<WorkerOutcome> complete(Batch batch) {
                            batches.add(batch);
                            return worker.complete(batch);
                        }

                        @Override
                        public String model() {
                            return worker.model();
                        }
                    };
                }
            };
        }
    }

    @LocalServerPort
    int port;

    @Autowired
    JdbcClient jdbc;

    private final JsonMapper json = JsonMapper.builder().build();

    @Autowired
    GatewayClient gateway;

    @Test
    void eightConcurrentRequestsAreOneBatchEightAnswersAndEightRows() throws Exception {
        // Given eight callers of one user with prompts of different lengths
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        List<String> prompts = new ArrayList<>();
        for (int i = 1; i <= 8; i++) {
            prompts.add("word ".repeat(i) + "caller" + i);
        }

        // When they post at once
        List<HttpResponse<String>> responses = new ArrayList<>();
        try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<HttpResponse<String>>> calls = prompts.stream()
                    .map(prompt -> callers.submit(() -> gateway.complete(Map.of("prompt", prompt, "user_id", user))))
                    .toList();
            for (var call : calls) {
                responses.add(call.get(30, TimeUnit.SECONDS));
            }
        }

        // Then each gets its own completion: the simulated worker reverses the words, one token a word
        List<JsonNode> answers = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            assertThat(responses.get(i).statusCode()).as(responses.get(i).body()).isEqualTo(200);
            JsonNode answer = json.readTree(responses.get(i).body());
            answers.add(answer);
            assertThat(answer.get("completion").asString()).isEqualTo("caller" + (i + 1) + " word".repeat(i + 1));
            assertThat(answer.get("prompt_tokens").asInt()).isEqualTo(i + 2);
            assertThat(answer.get("completion_tokens").asInt()).isEqualTo(i + 2);
            assertThat(answer.get("tokens").asInt()).isEqualTo(2 * (i + 2));
        }

        // And the worker saw them as one batch of eight
        assertThat(WorkerSpyConfiguration.batches).singleElement().satisfies(batch ->
                assertThat(batch.prompts()).containsExactlyInAnyOrderElementsOf(prompts));

        // And each answer has its row, with the same counts
        UsageRows.await(jdbc, user, 8);
        for (JsonNode answer : answers) {
            var row = jdbc.sql("""
                            SELECT user_id, prompt_tokens, completion_tokens, total_tokens, model
                            FROM token_usage WHERE request_id = ?::uuid""")
                    .param(answer.get("request_id").asString())
                    .query((rs, n) -> List.of(rs.getLong(1), rs.getInt(2), rs.getInt(3), rs.getInt(4), rs.getString(5)))
                    .single();
            assertThat(row).containsExactly(user, answer.get("prompt_tokens").asInt(),
                    answer.get("completion_tokens").asInt(), answer.get("tokens").asInt(), "simulated");
        }
    }

    @Test
    void healthIsOk() throws Exception {
        var response = gateway.get("/health");

        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.body()).isEqualTo("ok");
    }

    @Test
    void actuatorHealthShowsTheDatabaseButReadinessDoesNotDependOnIt() {
        // When the health endpoint, its db component and the readiness group are asked
        JsonNode health = json.readTree(gateway.get("/actuator/health").body());
        var db = gateway.get("/actuator/health/db");
        JsonNode readiness = json.readTree(gateway.get("/actuator/health/readiness").body());

        // Then db is one of the components, answers on its own, and is not part of readiness
        assertThat(health.path("components").path("db").path("status").asString()).isEqualTo("UP");
        assertThat(db.statusCode()).isEqualTo(200);
        assertThat(readiness.path("components").has("db")).isFalse();
        assertThat(readiness.path("components").has("usageLedger")).isTrue();
    }
}
