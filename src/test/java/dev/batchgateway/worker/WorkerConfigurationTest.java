package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.WorkerApi;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.boot.health.contributor.Status;

/** What the worker configuration builds from the settings: the simulation, a pool per model, a router, and readiness. */
class WorkerConfigurationTest {

    /** Nobody listens here: the pools' start-up checks and probes find nothing, quickly. */
    private static final String NOWHERE = "http://127.0.0.1:1";

    private final WorkerConfiguration configuration = new WorkerConfiguration();
    private final SimpleMeterRegistry meters = new SimpleMeterRegistry();

    @Test
    void theSimulatedWorkerServesTheSimulatedModelAndIsAlwaysReady() {
        WorkerApi worker = configuration.worker(properties(worker("simulated", List.of(), null), List.of()), meters);

        assertThat(worker).isInstanceOf(SimulatedWorker.class);
        assertThat(worker.model()).isEqualTo("simulated");
        var health = configuration.workerHealthIndicator(worker).health();
        assertThat(health.getStatus()).isEqualTo(Status.UP);
        assertThat(health.getDetails()).isEqualTo(Map.of("model", "simulated"));
    }

    @Test
    void vllmServersArePooledOnePerUrlAndReadyOnlyWhileOneAnswers() throws Exception {
        try (var pool = (WorkerPool) configuration.worker(
                properties(worker("vllm", List.of(NOWHERE, NOWHERE + "0"), "qwen"), List.of()), meters)) {
            assertThat(pool.model()).isEqualTo("qwen");
            assertThat(pool.health()).containsOnlyKeys(NOWHERE, NOWHERE + "0");

            var health = configuration.workerHealthIndicator(pool).health();
            assertThat(health.getStatus()).isEqualTo(Status.DOWN);
            assertThat(health.getDetails()).containsOnlyKeys(NOWHERE, NOWHERE + "0");
            assertThat(health.getDetails().get(NOWHERE)).asString().startsWith("DOWN: no answer to /health: ");
            assertThat(health.getDetails().get(NOWHERE + "0")).asString().contains("worker 2");
        }
    }

    @Test
    void furtherModelsSitBehindARouterTheDefaultFirst() {
        // Given the simulation as default, and an Ollama model without a key of its own
        var ollama = new WorkerSettings.Model("llama", "ollama", List.of(NOWHERE), null, null, null, null);
        var router = (ModelRouter) configuration.worker(
                properties(worker("simulated", List.of(), null), List.of(ollama)), meters);

        // Then the router holds the simulation first, then a pool of the Ollama server, and readiness details both
        assertThat(router.model()).isEqualTo("simulated");
        assertThat(router.byModel().keySet()).containsExactly("simulated", "llama");
        assertThat(router.byModel().get("simulated")).isInstanceOf(SimulatedWorker.class);
        assertThat(router.byModel().get("llama")).isInstanceOfSatisfying(WorkerPool.class,
                pool -> assertThat(pool.health()).containsOnlyKeys(NOWHERE));
        var health = configuration.workerHealthIndicator(router).health();
        assertThat(health.getStatus()).isEqualTo(Status.UP);
        assertThat(health.getDetails()).containsOnlyKeys("simulated", "llama");
        router.close();
    }

    @Test
    void aFurtherModelWithoutAKeyOfItsOwnUsesTheWorkersKey() throws Exception {
        // Given an Ollama server that notes the credentials of its health checks
        List<String> credentials = new java.util.concurrent.CopyOnWriteArrayList<>();
        var server = com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/api/show", exchange -> {
            credentials.add(String.valueOf(exchange.getRequestHeaders().getFirst("Authorization")));
            exchange.sendResponseHeaders(200, -1);
            exchange.close();
        });
        server.start();
        try {
            String url = "http://127.0.0.1:" + server.getAddress().getPort();
            var ollama = new WorkerSettings.Model("llama", "ollama", List.of(url), null, null, null, null);
            var keyed = new WorkerSettings.Worker("simulated", List.of(), null, Duration.ofSeconds(5),
                    Duration.ofSeconds(1), Duration.ofSeconds(1), null, "worker-key", Duration.ofSeconds(4), 3, null, null);

            // When the model's pool checks its server
            var router = (ModelRouter) configuration.worker(properties(keyed, List.of(ollama)), meters);
            var pool = (WorkerPool) router.byModel().get("llama");
            assertThat(pool.health().get(url).up()).isTrue();

            // Then it sent the worker's key
            assertThat(credentials).isNotEmpty().allSatisfy(header -> assertThat(header).isEqualTo("Bearer worker-key"));
            router.close();
        } finally {
            server.stop(0);
        }
    }

    private static WorkerSettings.Worker worker(String type, List<String> urls, String model) {
        return new WorkerSettings.Worker(type, urls, model, Duration.ofSeconds(5), Duration.ofSeconds(1), Duration.ofSeconds(1),
                null, null, Duration.ofSeconds(4), 3, null, null);
    }

    private static WorkerSettings properties(WorkerSettings.Worker worker, List<WorkerSettings.Model> models) {
        return new WorkerSettings(worker, models, new WorkerSettings.Simulated(Duration.ZERO), new WorkerSettings.Batch(8), 256, 10_000);
    }
}
