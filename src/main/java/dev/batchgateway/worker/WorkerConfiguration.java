package dev.batchgateway.worker;

import dev.batchgateway.GatewayProperties;
import dev.batchgateway.InvalidConfigurationException;
import dev.batchgateway.completion.WorkerApi;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** Builds the worker named by {@code GATEWAY_WORKER_TYPE}. */
@Configuration(proxyBeanMethods = false)
class WorkerConfiguration {

    @Bean
    WorkerApi worker(GatewayProperties properties) {
        return switch (properties.worker().type()) {
            case SIMULATED -> new SimulatedWorker(properties.simulated().latency());
            case VLLM, OLLAMA -> throw new InvalidConfigurationException(
                    "GATEWAY_WORKER_TYPE=" + properties.worker().type().name().toLowerCase()
                            + " is not available in this build yet: use simulated");
        };
    }
}
