package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.worker.FakeVllm;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A vLLM started with {@code --api-key} and a gateway given the wrong key: vLLM's {@code /health} still answers 200,
 * but readiness is DOWN naming the setting, start-up says so in one line and takes the worker out of rotation, callers
 * get 503 with the reason and nothing is sent, and the key is never shown.
 */
@ExtendWith(OutputCaptureExtension.class)
@GatewayApplicationTest(properties = {"gateway.worker.type=vllm", "gateway.worker.model=m", "gateway.batch.size=1",
                "gateway.batch.max-wait=0ms", "gateway.worker.api-key=" + MisconfiguredWorkerGatewayTest.WRONG_KEY})
class MisconfiguredWorkerGatewayTest {

    static final String WRONG_KEY = "sk-wrong-key-that-must-never-show";
    static final FakeVllm vllm = new FakeVllm("m");

    static {
        vllm.apiKey = "sk-the-right-key";
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        registry.add("gateway.worker.url", vllm::url);
    }

    @AfterAll
    static void stopVllm() {
        vllm.close();
    }

    private final JsonMapper json = JsonMapper.builder().build();

    @Autowired
    GatewayClient gateway;

    @Test
    void aWrongKeyShowsInReadinessInOneStartUpLineAndInTheCallersDetailButTheKeyNeverShows(CapturedOutput output)
            throws Exception {
        // Then readiness is DOWN, with the reason for this worker
        var readiness = gateway.get("/actuator/health/readiness");
        assertThat(readiness.statusCode()).as(readiness.body()).isEqualTo(503);
        JsonNode worker = json.readTree(readiness.body()).at("/components/worker");
        assertThat(worker.get("status").asString()).isEqualTo("DOWN");
        String reason = "worker 1 refused the gateway's credentials (HTTP 401): check GATEWAY_WORKER_API_KEY";
        assertThat(worker.at("/details").get(vllm.url()).asString()).isEqualTo("DOWN: " + reason);

        // And start-up said it in one line (the check runs in the background: wait for it)
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!output.getAll().contains("cannot serve: " + reason)) {
            assertThat(System.nanoTime()).as("start-up line within 10 s").isLessThan(deadline);
            Thread.sleep(20);
        }

        // When callers post, then each gets 503 with the reason before anything is sent: the start-up check took the
        // worker out of rotation, and the probe each caller's batch makes of it fails the same way
        var shown = new java.util.ArrayList<String>();
        for (int call = 0; call < 2; call++) {
            var refused = gateway.complete(Map.of("prompt", "hello", "user_id", 7));
            shown.add(refused.body());
            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
            assertThat(refused.headers().firstValue("Retry-After")).isPresent();
            assertThat(json.readTree(refused.body()).get("detail").asString()).contains(reason);
        }
        assertThat(vllm.calls()).isEmpty();

        // And callers never see the worker's URL, which only the operator's views and the log show
        for (String answer : java.util.List.copyOf(shown)) {
            assertThat(answer).doesNotContain(vllm.url(), "127.0.0.1");
        }
        assertThat(output.getAll()).contains("worker 1 of model m is " + vllm.url());

        // And the key itself appears nowhere: not in logs, answers, readiness or metrics
        var metrics = gateway.get("/actuator/prometheus");
        shown.addAll(java.util.List.of(output.getAll(), readiness.body(), metrics.body()));
        for (String text : shown) {
            assertThat(text).doesNotContain(WRONG_KEY);
        }
    }
}
