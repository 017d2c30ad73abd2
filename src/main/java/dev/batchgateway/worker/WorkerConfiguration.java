package dev.batchgateway.worker;

import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.WorkerApi;
import dev.batchgateway.worker.WorkerSettings.ServedModel;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Builds the workers of each model of {@link WorkerSettings}: the simulated one, or a {@link WorkerPool} of servers, one
 * per URL, each reached as its {@link WorkerKind} says (OpenAI-compatible ones in their {@link Dialect}, or Ollama). With
 * several models, the workers of each sit behind a {@link ModelRouter}, the default model first.
 */
@Configuration(proxyBeanMethods = false)
@EnableConfigurationProperties(WorkerSettings.class)
class WorkerConfiguration {

    private static final Logger LOG = LoggerFactory.getLogger(WorkerConfiguration.class);

    @Bean
    WorkerApi worker(WorkerSettings settings, MeterRegistry meters) {
        WorkerRetries retries = (reason, prompts) -> Counter.builder("gateway.worker.retries")
                .description("Prompts sent to a worker a second time, one per call, after it refused (400) or failed (500) their whole batch, or answered it without each prompt's counts")
                .tag("reason", reason)
                .register(meters)
                .increment(prompts);
        List<ServedModel> served = settings.served();
        if (served.stream().anyMatch(model -> !model.kind().simulated())) {
            WorkerConnections.longerThanWanted(settings.worker().idleTimeout(), System.getProperty(WorkerConnections.KEEP_ALIVE))
                    .ifPresent(LOG::warn);
        }
        if (served.size() == 1) {
            return workers(settings, served.getFirst(), retries);
        }
        Map<String, WorkerApi> byModel = new LinkedHashMap<>();
        for (ServedModel model : served) {
            byModel.put(model.name(), workers(settings, model, retries));
        }
        return new ModelRouter(byModel);
    }

    /**
     * The workers of one model: the simulated one, or a pool of servers of its kind, one per URL. The i-th URL is
     * "worker i" to callers, who never see the URLs.
     */
    private static WorkerApi workers(WorkerSettings settings, ServedModel model, WorkerRetries retries) {
        if (model.kind().simulated()) {
            return new SimulatedWorker(model.name(), settings.simulated().latency());
        }
        var worker = settings.worker();
        List<String> urls = model.urls();
        IntFunction<RemoteWorker> connect = i -> {
            // callers read "worker i" in errors; the log says once which URL that is
            LOG.info("worker {} of model {} is {}", i + 1, model.name(), urls.get(i));
            var endpoint = new WorkerEndpoint("worker " + (i + 1), urls.get(i), model.apiKey(), worker.connectTimeout(),
                    model.timeout(), settings.maxAnswerBytes());
            return model.kind().connect(endpoint, model.name(), retries);
        };
        List<RemoteWorker> members = IntStream.range(0, urls.size()).mapToObj(connect).toList();
        var pool = new WorkerPool(
                members,
                model.maxConcurrentBatches(),
                worker.maxConsecutiveTimeouts(),
                worker.backOff(),
                worker.maxBackOff(),
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
