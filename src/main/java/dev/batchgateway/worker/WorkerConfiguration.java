package dev.batchgateway.worker;

import dev.batchgateway.GatewayProperties;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.WorkerApi;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
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
    WorkerApi worker(GatewayProperties properties, MeterRegistry meters) {
        var worker = properties.worker();
        WorkerRetries retries = (reason, prompts) -> Counter.builder("gateway.worker.retries")
                .description("Prompts sent to a worker a second time, one per call, after it refused (400) or failed (500) their whole batch")
                .tag("reason", reason)
                .register(meters)
                .increment(prompts);
        return switch (worker.type()) {
            case SIMULATED -> new SimulatedWorker(properties.simulated().latency());
            case VLLM -> pool(properties, url -> new VllmWorker(endpoint(worker, url), worker.model(), retries));
            case OLLAMA -> pool(properties, url -> new OllamaWorker(endpoint(worker, url), worker.model()));
        };
    }

    private static WorkerPool pool(GatewayProperties properties, Function<String, RemoteWorker> connect) {
        List<RemoteWorker> members = properties.worker().url().stream().map(connect).toList();
        var pool = new WorkerPool(
                members,
                properties.maxConcurrentBatchesPerWorker(),
                properties.worker().maxConsecutiveTimeouts(),
                properties.worker().backOff(),
                MAX_BACK_OFF,
                Ticker.system());
        pool.checkAtStartUp();
        return pool;
    }

    private static WorkerEndpoint endpoint(GatewayProperties.Worker worker, String url) {
        return new WorkerEndpoint(url, worker.apiKey(), worker.connectTimeout(), worker.timeout());
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
