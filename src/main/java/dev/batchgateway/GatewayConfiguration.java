package dev.batchgateway;

import dev.batchgateway.completion.Admission;
import dev.batchgateway.completion.Completions;
import dev.batchgateway.completion.Scheduler;
import dev.batchgateway.completion.SchedulerApi;
import dev.batchgateway.completion.SchedulerEvents;
import dev.batchgateway.completion.SchedulerPolicy;
import dev.batchgateway.completion.SchedulerSettings;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.TokenCeilings;
import dev.batchgateway.completion.Settlement;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.UsageEvents;
import dev.batchgateway.completion.UsageJournal;
import dev.batchgateway.completion.UsageLedger;
import dev.batchgateway.completion.UsageRepository;
import dev.batchgateway.completion.WorkerApi;
import dev.batchgateway.usage.UsageSettings;
import dev.batchgateway.web.WebSettings;
import dev.batchgateway.worker.WorkerSettings;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.ConfigurableEnvironment;

/**
 * The injector: builds the domain from the ports' adapters and each package's settings. The wiring may read every
 * package; no package reads the wiring.
 */
@Configuration(proxyBeanMethods = false)
class GatewayConfiguration {

    private static final Logger LOG = LoggerFactory.getLogger(GatewayConfiguration.class);

    /** Whether the scheduler's drain answered every caller within the grace period, for the drain's last log line. */
    private final AtomicBoolean everyCallerAnswered = new AtomicBoolean(true);

    @Bean
    UsageLedger usageLedger(
            UsageRepository repository,
            UsageJournal journal,
            UsageSettings usage,
            ObjectProvider<UsageEvents> events) {
        return new UsageLedger(
                        repository,
                        journal,
                        usage.bufferCapacity(),
                        usage.rowsPerWrite(),
                        usage.firstBackOff(),
                        usage.maxBackOff(),
                        Ticker.system(),
                        UsageEvents.all(events.orderedStream().toList()))
                .start();
    }

    @Bean
    SchedulerSettings schedulerSettings(ConfigurableEnvironment environment) {
        return SettingsCheck.bind(environment, "gateway", SchedulerSettings.class);
    }

    /** How the scheduler batches, in front of every model's workers: their longest call. */
    @Bean
    SchedulerPolicy schedulerPolicy(SchedulerSettings scheduler, WorkerSettings workers) {
        // for workers that count no slots of their own (the simulated one): the default model's per-worker limit
        return scheduler.policy(workers.served().getFirst().maxConcurrentBatches(), workers.longestTimeout());
    }

    /** The models clients may name, the default first, as the workers' settings list them. */
    @Bean
    ServedModels servedModels(WorkerSettings workers) {
        return new ServedModels(workers.modelNames(), workers.maxConcurrentBatches(), workers.embeddingModelNames());
    }

    /**
     * The ceiling of {@code max_tokens} every entry point asks: each model's context as its servers last reported it,
     * under the operator's cap ({@code GATEWAY_MAX_TOKENS}).
     */
    @Bean
    TokenCeilings tokenCeilings(WebSettings web, WorkerApi worker) {
        return new TokenCeilings(web.tokenCap(), worker::context);
    }

    @Bean
    Scheduler scheduler(
            WorkerApi worker,
            UsageLedger ledger,
            SchedulerPolicy policy,
            ObjectProvider<SchedulerEvents> events,
            Settlement budgets) {
        return new Scheduler(
                        worker, ledger, policy, Ticker.system(), Clock.systemUTC(),
                        SchedulerEvents.all(events.orderedStream().toList()), budgets)
                .start();
    }

    /** The one way in for every entry point: admits a call's requests (budgets), queues them with the scheduler. */
    @Bean
    Completions completions(Admission admission, SchedulerApi scheduler) {
        return new Completions(admission, scheduler);
    }

    /**
     * Stops the scheduler before the web server's graceful shutdown: new requests get 503, queued ones leave in a
     * last batch, and every caller has its answer before the server waits for open requests.
     *
     * <p>Spring stops the highest phase first. Boot 4.1's phases, read from its classes: {@code
     * WebServerGracefulShutdownLifecycle} at {@code DEFAULT_PHASE - 1024}, {@code WebServerStartStopLifecycle} at
     * {@code DEFAULT_PHASE - 2048}; the data source closes after every phase, when beans are destroyed. So: scheduler
     * ({@code DEFAULT_PHASE}), usage flush ({@code DEFAULT_PHASE - 512}), graceful web shutdown, web server stop,
     * connection pool. Each step is synchronous and bounded by its own grace period.
     */
    @Bean
    SmartLifecycle schedulerShutdown(
            Scheduler scheduler,
            @Value("${spring.lifecycle.timeout-per-shutdown-phase:30s}") Duration grace) {
        return PhasedLifecycle.shutdownStep(SmartLifecycle.DEFAULT_PHASE, () -> {
            LOG.info("shutdown: drain begins, {} requests queued and {} batches in flight get their answers; new requests get 503",
                    scheduler.queued(), scheduler.batchesInFlight());
            everyCallerAnswered.set(scheduler.shutdown(grace));
        });
    }

    /**
     * Flushes usage after the scheduler has finished its last batches (their rows are in the ledger once
     * {@link Scheduler#shutdown} returns) and before the database pool closes; logs the rows it could not write.
     */
    @Bean
    SmartLifecycle usageLedgerShutdown(
            UsageLedger ledger,
            @Value("${spring.lifecycle.timeout-per-shutdown-phase:30s}") Duration grace) {
        return PhasedLifecycle.shutdownStep(SmartLifecycle.DEFAULT_PHASE - 512, () -> {
            int unwritten = ledger.close(grace).size();
            LOG.info("shutdown: drain ended, {}; {}",
                    everyCallerAnswered.get() ? "every request answered" : "after the grace period requests still queued got 503, those at the worker 504",
                    unwritten == 0 ? "every usage row written" : unwritten + " usage rows NOT written (logged above with their content)");
        });
    }
}
