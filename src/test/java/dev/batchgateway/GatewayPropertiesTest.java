package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.settings.InvalidConfigurationException;
import dev.batchgateway.worker.WorkerSettings;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.util.unit.DataSize;

/** The worker settings' own rules: the answer cap's default and bounds, and the base URLs a call can be built on. */
class GatewayPropertiesTest {

    @Test
    void theAnswerCapDefaultsToFourKibPerTokenAndEightBytesPerPromptCharOfABatchTenMibWithTheDefaults() {
        // Given the defaults: batches of 8, 256 tokens, prompts of 32768 characters
        assertThat(properties(8, 256, 32768, null).maxAnswerBytes()).isEqualTo(10L * 1024 * 1024);
        // And it grows with each of them
        assertThat(properties(1, 16, 1000, null).maxAnswerBytes()).isEqualTo(16 * 4096 + 1000 * 8);
    }

    @Test
    void aGivenAnswerCapWinsAndOneUnder64KbIsRefusedNamingTheSetting() {
        assertThat(properties(8, 256, 32768, DataSize.ofMegabytes(1)).maxAnswerBytes()).isEqualTo(1024 * 1024);
        assertThat(properties(8, 256, 32768, DataSize.ofKilobytes(64)).maxAnswerBytes()).isEqualTo(64 * 1024);
        assertThatThrownBy(() -> worker(List.of("http://gpu1:8000"), DataSize.ofBytes(64 * 1024 - 1)))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageStartingWith("GATEWAY_WORKER_MAX_ANSWER_BYTES must be at least 64KB");
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpu1:8000", "http://", "http://gpu_1:8000", "http://a b:8000", "ftp://gpu1"})
    void aWorkerUrlACallCannotBeBuiltOnIsRefusedAtStartUp(String url) {
        // (a host with an underscore has no host name for java.net.URI, and the JDK client refuses it at every call)
        assertThatThrownBy(() -> worker(List.of(url), null))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageContaining("GATEWAY_WORKER_URL must list http:// or https:// base URLs with a host name");
    }

    private static WorkerSettings properties(int batchSize, int maxTokens, int maxPromptChars, DataSize cap) {
        return new WorkerSettings(worker(List.of("http://gpu1:8000", "https://10.0.0.7:8000/"), cap), List.of(),
                new WorkerSettings.Simulated(Duration.ZERO), new WorkerSettings.Batch(batchSize), maxTokens, maxPromptChars);
    }

    private static WorkerSettings.Worker worker(List<String> urls, DataSize cap) {
        return new WorkerSettings.Worker("vllm", urls, "m", Duration.ofSeconds(5), Duration.ofSeconds(1),
                Duration.ofSeconds(1), null, null, Duration.ofSeconds(4), 3, cap, null);
    }
}
