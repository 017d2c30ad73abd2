package dev.batchgateway.worker;

import dev.batchgateway.GatewayProperties;
import dev.batchgateway.GatewayProperties.WorkerType;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.WorkerApi;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Builds the worker named by {@code GATEWAY_WORKER_TYPE}: the simulated one, or a {@link WorkerPool} of servers, one per
 * URL of {@code GATEWAY_WORKER_URL}: OpenAI-compatible ones (vLLM, llama.cpp, SGLang, TGI, others), each spoken to in its
 * {@link Dialect}, or Ollama. With further models ({@code GATEWAY_MODELS_<i>_…}), the workers
 * of each model sit behind a {@link ModelRouter}, the default model first.
 */
@Configuration(proxyBeanMethods = false)
class WorkerConfiguration {

    private static final Logger LOG = LoggerFactory.getLogger(WorkerConfiguration.class);

    /** The longest a worker stays out of rotation between two health probes. */
    private static final Duration MAX_BACK_OFF = Duration.ofMinutes(1);

    @Bean
    WorkerApi worker(GatewayProperties properties, MeterRegistry meters) {
        var worker = properties.worker();
        WorkerRetries retries = (reason, prompts) -> Counter.builder("gateway.worker.retries")
                .description("Prompts sent to a worker a second time, one per call, after it refused (400) or failed (500) their whole batch, or answered it without each prompt's counts")
                .tag("reason", reason)
                .register(meters)
                .increment(prompts);
        WorkerApi defaultModel = workers(properties, worker.type(), worker.model(), worker.url(), worker.apiKey(), retries);
        if (properties.models().isEmpty()) {
            return defaultModel;
        }
        Map<String, WorkerApi> byModel = new LinkedHashMap<>();
        byModel.put(properties.servedModels().getFirst(), defaultModel);
        for (var model : properties.models()) {
            String apiKey = model.apiKey() != null ? model.apiKey() : worker.apiKey();
            byModel.put(model.name(), workers(properties, model.type(), model.name(), model.url(), apiKey, retries));
        }
        return new ModelRouter(byModel);
    }

    /**
     * The workers of one model: the simulated one, or a pool of servers of the type, one per URL. The i-th URL is
     * "worker i" to callers, who never see the URLs.
     */
    private static WorkerApi workers(
            GatewayProperties properties, WorkerType type, String model, List<String> urls, String apiKey, WorkerRetries retries) {
        var worker = properties.worker();
        IntFunction<WorkerEndpoint> endpoint = i -> {
            // callers read "worker i" in errors; the log says once which URL that is
            LOG.info("worker {} of model {} is {}", i + 1, model, urls.get(i));
            return new WorkerEndpoint("worker " + (i + 1), urls.get(i), apiKey, worker.connectTimeout(), worker.timeout(),
                    properties.maxAnswerBytes());
        };
        return switch (type) {
            case SIMULATED -> new SimulatedWorker(model == null ? SimulatedWorker.MODEL : model, properties.simulated().latency());
            case VLLM -> pool(properties, type, urls, i -> new OpenAiWorker(endpoint.apply(i), model, Dialect.VLLM, retries));
            case LLAMACPP -> pool(properties, type, urls, i -> new OpenAiWorker(endpoint.apply(i), model, Dialect.LLAMA_CPP, retries));
            case SGLANG -> pool(properties, type, urls, i -> new OpenAiWorker(endpoint.apply(i), model, Dialect.SGLANG, retries));
            case TGI -> pool(properties, type, urls, i -> new OpenAiWorker(endpoint.apply(i), model, Dialect.TGI, retries));
            case OPENAI -> pool(properties, type, urls, i -> new OpenAiWorker(endpoint.apply(i), model, Dialect.OPENAI, retries));
            case OLLAMA -> pool(properties, type, urls, i -> new OllamaWorker(endpoint.apply(i), model));
        };
    }

    private static WorkerPool pool(
            GatewayProperties properties, WorkerType type, List<String> urls, IntFunction<RemoteWorker> connect) {
        List<RemoteWorker> members = IntStream.range(0, urls.size()).mapToObj(connect).toList();
        var pool = new WorkerPool(
                members,
                properties.maxConcurrentBatchesPerWorker(type),
                properties.worker().maxConsecutiveTimeouts(),
                properties.worker().backOff(),
                MAX_BACK_OFF,
                Ticker.system());
        pool.checkAtStartUp();
        return pool;
    }

    /**
     * {@code gateway.worker.up{worker, server}}: 1 while a server is in its pool's rotation, 0 while it is out (read
     * when scraped, from the pool's own view, without a health check); the simulated worker is always 1.
     */
    @Bean
    MeterBinder workerGauges(WorkerApi worker) {
        Map<String, WorkerApi> byModel = worker instanceof ModelRouter router ? router.byModel() : Map.of(worker.model(), worker);
        return meters -> byModel.forEach((model, workers) -> {
            if (workers instanceof WorkerPool pool) {
                for (String url : pool.urls()) {
                    up(meters, model, url, () -> pool.inRotation(url) ? 1 : 0);
                }
            } else {
                up(meters, model, model, () -> 1);
            }
        });
    }

    private static void up(MeterRegistry meters, String model, String server, java.util.function.Supplier<Number> value) {
        Gauge.builder("gateway.worker.up", value)
                .description("1 while the worker at this server is in rotation, 0 while it is out of it")
                .tag("worker", model)
                .tag("server", server)
                .register(meters);
    }

    /** Readiness's {@code worker} component (the bean name minus "HealthIndicator"). */
    @Bean
    HealthIndicator workerHealthIndicator(WorkerApi worker) {
        return switch (worker) {
            case WorkerPool pool -> new WorkerReadiness(Map.of(pool.model(), pool));
            case ModelRouter router -> new WorkerReadiness(router.byModel());
            default -> () -> Health.up().withDetail("model", worker.model()).build();
        };
    }
}
