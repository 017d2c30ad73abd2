package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.settings.InvalidConfigurationException;
import dev.batchgateway.worker.WorkerSettings.ServedModel;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** One list of models, the default first, whether it is configured by GATEWAY_WORKER_* or by GATEWAY_MODELS_0_*. */
class WorkerSettingsTest {

    private static final Duration WORKER_TIMEOUT = Duration.ofSeconds(60);

    @Test
    void theWorkerVariablesAreTheOneModelCaseAndFurtherModelsFollowIt() {
        // Given GATEWAY_WORKER_* for vLLM and one further model with a timeout and concurrency of its own
        var settings = settings(worker("vllm", List.of("http://gpu1:8000", "http://gpu2:8000"), "chat", 4),
                List.of(new WorkerSettings.Model("code", "ollama", List.of("http://gpu3:11434"), "code-key", Duration.ofSeconds(90), 2, null)));

        // Then the served list is the worker's model first, then the further one, each with what it resolves to
        assertThat(settings.served()).extracting(ServedModel::name).containsExactly("chat", "code");
        ServedModel chat = settings.served().get(0);
        assertThat(chat.kind().name()).isEqualTo("vllm");
        assertThat(chat.timeout()).isEqualTo(WORKER_TIMEOUT);
        assertThat(chat.maxConcurrentBatches()).isEqualTo(4);
        ServedModel code = settings.served().get(1);
        assertThat(code.apiKey()).isEqualTo("code-key");
        assertThat(code.timeout()).isEqualTo(Duration.ofSeconds(90));
        assertThat(code.maxConcurrentBatches()).isEqualTo(2);
        // And the scheduler's limits sum every model's servers, and its guard is the longest call any model may take
        assertThat(settings.maxConcurrentBatches()).isEqualTo(4 * 2 + 2);
        assertThat(settings.longestTimeout()).isEqualTo(Duration.ofSeconds(90));
    }

    @Test
    void withoutAWorkerTypeTheFirstModelIsTheDefaultAndWhatItLeavesUnsetIsTheWorkers() {
        // Given no GATEWAY_WORKER_TYPE, a worker key, and two models, the first without a key, timeout or concurrency
        var settings = settings(new WorkerSettings.Worker(null, List.of(), null, WORKER_TIMEOUT, Duration.ofSeconds(1),
                        Duration.ofSeconds(1), null, "worker-key", Duration.ofSeconds(4), 3, null, null),
                List.of(new WorkerSettings.Model("llama", "ollama", List.of("http://gpu1:11434"), null, null, null, null),
                        new WorkerSettings.Model("sim", "simulated", List.of(), null, null, null, null)));

        // Then the first is the default, with the worker's key and timeout and its kind's concurrency
        assertThat(settings.modelNames()).containsExactly("llama", "sim");
        ServedModel llama = settings.served().getFirst();
        assertThat(llama.apiKey()).isEqualTo("worker-key");
        assertThat(llama.timeout()).isEqualTo(WORKER_TIMEOUT);
        assertThat(llama.maxConcurrentBatches()).isEqualTo(1);
        // And the simulation needs no URL: it counts as one server
        assertThat(settings.maxConcurrentBatches()).isEqualTo(1 + 32);
    }

    @Test
    void noWorkerTypeAndNoModelIsRefusedNamingTheVariableAndEveryKind() {
        assertThatThrownBy(() -> settings(worker(null, List.of(), null, null), List.of()))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessage("GATEWAY_WORKER_TYPE is not set: set it to simulated, vllm, llamacpp, sglang, tgi, openai or ollama");
    }

    @Test
    void aWorkerUrlWithoutAWorkerTypeIsRefusedRatherThanIgnored() {
        assertThatThrownBy(() -> settings(worker(null, List.of("http://gpu1:8000"), "chat", null),
                        List.of(new WorkerSettings.Model("code", "vllm", List.of("http://gpu2:8000"), null, null, null, null))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageStartingWith("GATEWAY_WORKER_URL and GATEWAY_WORKER_MODEL need GATEWAY_WORKER_TYPE");
    }

    @ParameterizedTest
    @CsvSource({"vllm, vllm", "VLLM, vllm", "vLLM, vllm", "llama-cpp, llamacpp", "llama_cpp, llamacpp", "' ollama ', ollama"})
    void aKindIsNamedAsSpringNamesAnEnumCaseAndPunctuationAside(String given, String kind) {
        assertThat(WorkerKind.named(given).name()).isEqualTo(kind);
    }

    @Test
    void anUnknownKindIsRefusedNamingTheSettingAndTheKindsThereAre() {
        assertThatThrownBy(() -> worker("foo", List.of(), null, null))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessage("GATEWAY_WORKER_TYPE=foo is not valid: set it to one of simulated, vllm, llamacpp, sglang, tgi, openai, ollama");
        assertThatThrownBy(() -> settings(worker("simulated", List.of(), null, null),
                        List.of(new WorkerSettings.Model("code", "vllama", List.of("http://gpu2:8000"), null, null, null, null))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageStartingWith("GATEWAY_MODELS_0_TYPE=vllama is not valid: set it to one of simulated, vllm");
    }

    @Test
    void aModelsOwnTimeoutAndConcurrencyMustBePositive() {
        var simulated = worker("simulated", List.of(), null, null);
        assertThatThrownBy(() -> settings(simulated,
                        List.of(new WorkerSettings.Model("code", "vllm", List.of("http://gpu2:8000"), null, Duration.ZERO, null, null))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageStartingWith("GATEWAY_MODELS_0_TIMEOUT must be a positive duration");
        assertThatThrownBy(() -> settings(simulated,
                        List.of(new WorkerSettings.Model("code", "vllm", List.of("http://gpu2:8000"), null, null, 0, null))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageStartingWith("GATEWAY_MODELS_0_MAX_CONCURRENT_BATCHES must be at least 1, was 0");
    }

    @Test
    void aModelEmbedsOnlyWhenItsTaskSaysSoAndAnUnknownTaskIsRefusedNamingTheVariable() {
        // Given a generating default model and an embedding model (the task's case and spaces aside)
        var settings = settings(worker("simulated", List.of(), null, null), List.of(
                new WorkerSettings.Model("bge", "vllm", List.of("http://gpu2:8000"), null, null, null, " Embed "),
                new WorkerSettings.Model("code", "vllm", List.of("http://gpu3:8000"), null, null, null, null)));

        // Then only the embedding model is one
        assertThat(settings.embeddingModelNames()).containsExactly("bge");
        assertThat(settings.served()).extracting(WorkerSettings.ServedModel::embeds).containsExactly(false, true, false);

        // And a task other than generate or embed stops start-up, naming the variable
        assertThatThrownBy(() -> settings(worker("simulated", List.of(), null, null), List.of(
                        new WorkerSettings.Model("bge", "vllm", List.of("http://gpu2:8000"), null, null, null, "pooling"))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessage("GATEWAY_MODELS_0_TASK must be generate (the default) or embed, was pooling");
    }

    @Test
    void theLongestBackOffDefaultsToAMinuteAndMustBePositive() {
        assertThat(worker("simulated", List.of(), null, null).maxBackOff()).isEqualTo(Duration.ofMinutes(1));
        assertThatThrownBy(() -> new WorkerSettings.Worker("simulated", List.of(), null, WORKER_TIMEOUT, Duration.ofSeconds(1),
                        Duration.ofSeconds(10), null, null, Duration.ofSeconds(4), 3, null, Duration.ZERO))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageStartingWith("GATEWAY_WORKER_MAX_BACK_OFF must be a positive duration");
    }

    private static WorkerSettings.Worker worker(String type, List<String> urls, String model, Integer concurrency) {
        return new WorkerSettings.Worker(type, urls, model, WORKER_TIMEOUT, Duration.ofSeconds(1), Duration.ofSeconds(1),
                concurrency, null, Duration.ofSeconds(4), 3, null, null);
    }

    private static WorkerSettings settings(WorkerSettings.Worker worker, List<WorkerSettings.Model> models) {
        return new WorkerSettings(worker, models, new WorkerSettings.Simulated(Duration.ZERO), new WorkerSettings.Batch(8), 256, 1000);
    }
}
