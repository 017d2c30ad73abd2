package dev.batchgateway.worker;

import dev.batchgateway.GatewayProperties;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.WorkerApi;
import java.time.Duration;
import java.util.List;
import java.util.function.Function;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Builds the worker named by {@code GATEWAY_WORKER_TYPE}: the simulated one, or a {@link WorkerPool} of vLLM or Ollama
 * servers, one per URL of {@code GATEWAY_WORKER_URL}.
 */
@Configuration(proxyBeanMethods = false)
class WorkerConfiguration {

    /** The longest a worker stays out of rotation between two health probes. */
    private static final Duration MAX_BACK_OFF = Duration.ofMinutes(1);

    @Bean
    WorkerApi worker(GatewayProperties properties) {
        var worker = properties.worker();
        return switch (worker.type()) {
            case SIMULATED -> new SimulatedWorker(properties.simulated().latency());
            case VLLM -> pool(properties, url -> new VllmWorker(endpoint(worker, url), worker.model()));
            case OLLAMA -> pool(properties, url -> new OllamaWorker(endpoint(worker, url), worker.model()));
        };
    }

    private static WorkerPool pool(GatewayProperties properties, Function<String, RemoteWorker> connect) {
        List<RemoteWorker> members = properties.worker().url().stream().map(connect).toList();
        return new WorkerPool(
                members, properties.maxConcurrentBatchesPerWorker(), properties.worker().backOff(), MAX_BACK_OFF, Ticker.system());
    }

    private static WorkerEndpoint endpoint(GatewayProperties.Worker worker, String url) {
        return new WorkerEndpoint(url, worker.connectTimeout(), worker.timeout());
    }

    /** Readiness's {@code worker} component (the bean name minus "HealthIndicator"). */
    @Bean
    HealthIndicator workerHealthIndicator(WorkerApi worker) {
        if (worker instanceof WorkerPool pool) {
            return new WorkerReadiness(pool);
        }
        return () -> Health.up().withDetail("model", worker.model()).build();
    }
}
