package dev.batchgateway;

import dev.batchgateway.batch.BatchFiles;
import dev.batchgateway.batch.BatchKeys;
import dev.batchgateway.batch.BatchRunner;
import dev.batchgateway.batch.BatchSettings;
import dev.batchgateway.batch.BatchStore;
import dev.batchgateway.batch.Batches;
import dev.batchgateway.batch.FileStore;
import dev.batchgateway.batch.LineFormat;
import dev.batchgateway.completion.CompletionsApi;
import java.time.Clock;
import java.time.Duration;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.ConfigurableEnvironment;

/**
 * The injector for the Batch API: its files and batches over the shared store, and this instance's runner, which
 * submits the lines through the same completion port as the HTTP endpoints.
 */
@Configuration(proxyBeanMethods = false)
class BatchConfiguration {

    @Bean
    BatchSettings batchSettings(ConfigurableEnvironment environment) {
        return SettingsCheck.bind(environment, "gateway.batch-api", BatchSettings.class);
    }

    @Bean
    BatchRunner batchRunner(BatchStore store, FileStore files, LineFormat format, CompletionsApi completions,
            BatchKeys keys, BatchSettings settings) {
        return new BatchRunner(store, files, format, completions, keys, settings, Clock.systemUTC());
    }

    @Bean
    Batches batches(BatchStore store, FileStore files, LineFormat format, BatchRunner runner) {
        return new Batches(store, files, format, runner);
    }

    @Bean
    BatchFiles batchFiles(FileStore files, BatchStore store) {
        return new BatchFiles(files, store);
    }

    /**
     * Starts the runner with the context, and stops it before the scheduler drains (Spring stops the highest phase
     * first): no line is claimed any more, the lines in flight get their answers from the scheduler's drain and are
     * recorded; those still running after the grace period are claimed again by another instance once their lease ends.
     */
    @Bean
    SmartLifecycle batchRunnerShutdown(BatchRunner runner,
            @Value("${spring.lifecycle.timeout-per-shutdown-phase:30s}") Duration grace) {
        return PhasedLifecycle.of(SmartLifecycle.DEFAULT_PHASE + 256, runner::start, () -> runner.close(grace));
    }
}
