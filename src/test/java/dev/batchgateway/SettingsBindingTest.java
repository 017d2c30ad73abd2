package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.budget.BudgetSettings;
import dev.batchgateway.budget.Budgets;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.KeySettings;
import dev.batchgateway.settings.InvalidConfigurationException;
import dev.batchgateway.usage.UsageSettings;
import dev.batchgateway.worker.WorkerSettings;
import dev.batchgateway.worker.WorkerSettings.ServedModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.boot.env.YamlPropertySourceLoader;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.springframework.core.io.ClassPathResource;

/**
 * Each package's settings, bound from environment variables and application.yml as the gateway binds them: the one
 * list of models under today's variable names, and the tunables that were constants, with the same defaults.
 */
class SettingsBindingTest {

    @Test
    void theWorkerVariablesAreTheDefaultModelAndTheModelsVariablesFollowWithTheirOwnTimeoutAndConcurrency() {
        var environment = environment(Map.of(
                "GATEWAY_WORKER_TYPE", "vllm", "GATEWAY_WORKER_URL", "http://gpu1:8000", "GATEWAY_WORKER_MODEL", "chat",
                "GATEWAY_MODELS_0_NAME", "code", "GATEWAY_MODELS_0_TYPE", "ollama", "GATEWAY_MODELS_0_URL", "http://gpu2:11434",
                "GATEWAY_MODELS_0_TIMEOUT", "90s", "GATEWAY_MODELS_0_MAX_CONCURRENT_BATCHES", "2"));

        var workers = SettingsCheck.bind(environment, "gateway", WorkerSettings.class);

        assertThat(workers.modelNames()).containsExactly("chat", "code");
        ServedModel chat = workers.served().get(0);
        assertThat(chat.timeout()).isEqualTo(Duration.ofSeconds(60));
        assertThat(chat.maxConcurrentBatches()).isEqualTo(32);
        ServedModel code = workers.served().get(1);
        assertThat(code.kind().name()).isEqualTo("ollama");
        assertThat(code.timeout()).isEqualTo(Duration.ofSeconds(90));
        assertThat(code.maxConcurrentBatches()).isEqualTo(2);
    }

    @Test
    void withoutAWorkerTypeTheFirstModelsEntryIsTheDefault() {
        var environment = environment(Map.of(
                "GATEWAY_MODELS_0_NAME", "llama", "GATEWAY_MODELS_0_TYPE", "ollama", "GATEWAY_MODELS_0_URL", "http://gpu2:11434"));

        var workers = SettingsCheck.bind(environment, "gateway", WorkerSettings.class);

        assertThat(workers.modelNames()).containsExactly("llama");
        assertThat(workers.maxConcurrentBatches()).isEqualTo(1);
    }

    @Test
    void theTunablesThatWereConstantsKeepTheirValuesUnsetAndTakeTheirVariables() {
        // Given nothing but a worker type, each is what the constant was
        var defaults = environment(Map.of("GATEWAY_WORKER_TYPE", "simulated"));
        var usage = SettingsCheck.bind(defaults, "gateway.usage", UsageSettings.class);
        assertThat(usage.rowsPerWrite()).isEqualTo(1000);
        assertThat(usage.firstBackOff()).isEqualTo(Duration.ofMillis(100));
        assertThat(usage.maxBackOff()).isEqualTo(Duration.ofSeconds(5));
        assertThat(SettingsCheck.bind(defaults, "gateway.budget", BudgetSettings.class).timing()).isEqualTo(Budgets.Timing.DEFAULT);
        var keys = SettingsCheck.bind(defaults, "gateway.key", KeySettings.class);
        assertThat(keys.caching()).isEqualTo(new ApiKeys.Caching(Duration.ofSeconds(2), Duration.ofSeconds(30),
                Duration.ofMillis(800), Duration.ofSeconds(1), 10_000, 10_000, 32));
        assertThat(keys.lastUseWrittenEvery()).isEqualTo(Duration.ofSeconds(10));
        assertThat(SettingsCheck.bind(defaults, "gateway", WorkerSettings.class).worker().maxBackOff()).isEqualTo(Duration.ofMinutes(1));

        // When their variables are set, then they are read
        var given = environment(Map.of("GATEWAY_WORKER_TYPE", "simulated", "GATEWAY_USAGE_ROWS_PER_WRITE", "250",
                "GATEWAY_BUDGET_FLUSH_EVERY", "500ms", "GATEWAY_KEY_LOOKUP_WAIT", "2s", "GATEWAY_WORKER_MAX_BACK_OFF", "5m"));
        assertThat(SettingsCheck.bind(given, "gateway.usage", UsageSettings.class).rowsPerWrite()).isEqualTo(250);
        assertThat(SettingsCheck.bind(given, "gateway.budget", BudgetSettings.class).flushEvery()).isEqualTo(Duration.ofMillis(500));
        assertThat(SettingsCheck.bind(given, "gateway.key", KeySettings.class).lookupWait()).isEqualTo(Duration.ofSeconds(2));
        assertThat(SettingsCheck.bind(given, "gateway", WorkerSettings.class).worker().maxBackOff()).isEqualTo(Duration.ofMinutes(5));
    }

    @Test
    void aBadTunableIsOneLineNamingItsVariable() {
        assertThatThrownBy(() -> SettingsCheck.check(environment(Map.of("GATEWAY_WORKER_TYPE", "simulated",
                        "GATEWAY_BUDGET_FLUSH_EVERY", "0s"))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageStartingWith("GATEWAY_BUDGET_FLUSH_EVERY must be a positive duration");
        assertThatThrownBy(() -> SettingsCheck.check(environment(Map.of("GATEWAY_WORKER_TYPE", "simulated",
                        "GATEWAY_KEY_LOOKUP_WAIT", "800"))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessage("GATEWAY_KEY_LOOKUP_WAIT=800 has no unit: write e.g. 800s or 800ms");
        assertThatThrownBy(() -> SettingsCheck.check(environment(Map.of("GATEWAY_WORKER_TYPE", "simulated",
                        "GATEWAY_USAGE_ROWS_PER_WRITE", "0"))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessage("GATEWAY_USAGE_ROWS_PER_WRITE must be at least 1, was 0");
    }

    /** These variables and application.yml, without the machine's own environment. */
    private static StandardEnvironment environment(Map<String, String> variables) {
        var environment = new StandardEnvironment();
        environment.getPropertySources().remove(StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME);
        // by the machine's environment's name: Spring maps GATEWAY_MODELS_0_NAME to gateway.models[0].name only there
        environment.getPropertySources().addFirst(new SystemEnvironmentPropertySource(
                StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME, new HashMap<>(variables)));
        try {
            new YamlPropertySourceLoader().load("application.yml", new ClassPathResource("application.yml"))
                    .forEach(environment.getPropertySources()::addLast);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return environment;
    }
}
