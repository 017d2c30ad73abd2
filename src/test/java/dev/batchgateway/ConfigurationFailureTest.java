package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/** A bad setting stops start-up with a message naming the variable, not a stack trace. */
@ExtendWith(OutputCaptureExtension.class)
class ConfigurationFailureTest {

    private static final String WORKER_TYPE_NOT_SET = "(worker type not set)";

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            (worker type not set)                     | GATEWAY_WORKER_TYPE is not set: set it to simulated, vllm, llamacpp, sglang, tgi, openai or ollama
            gateway.batch.size=0                      | GATEWAY_BATCH_SIZE must be at least 1, was 0
            gateway.batch.max-wait=-5ms               | GATEWAY_BATCH_MAX_WAIT must not be negative
            gateway.embeddings.batch-size=0           | GATEWAY_EMBEDDINGS_BATCH_SIZE must be at least 1, was 0
            gateway.embeddings.batch-size=many        | GATEWAY_EMBEDDINGS_BATCH_SIZE=many is not valid: set it to a whole number
            gateway.worker.timeout=0s                 | GATEWAY_WORKER_TIMEOUT must be a positive duration
            gateway.request-timeout=-1s               | GATEWAY_REQUEST_TIMEOUT must be a positive duration
            gateway.queue-capacity=0                  | GATEWAY_QUEUE_CAPACITY must be at least 1
            gateway.worker.max-concurrent-batches=0   | GATEWAY_WORKER_MAX_CONCURRENT_BATCHES must be at least 1
            gateway.max-tokens=0                      | GATEWAY_MAX_TOKENS must be at least 1
            gateway.usage.buffer-capacity=0           | GATEWAY_USAGE_BUFFER_CAPACITY must be at least 1
            gateway.usage.retention=12h               | GATEWAY_USAGE_RETENTION must be at least 1d (e.g. 400d)
            gateway.usage.retention=400               | GATEWAY_USAGE_RETENTION=400 has no unit
            gateway.usage.journal-max-size=100B       | GATEWAY_USAGE_JOURNAL_MAX_SIZE must be at least 1KB (e.g. 256MB), was 100B
            gateway.usage.journal-max-size=lots       | GATEWAY_USAGE_JOURNAL_MAX_SIZE=lots is not valid
            gateway.usage.journal-dir=                | GATEWAY_USAGE_JOURNAL_DIR must name a directory the gateway can write
            gateway.identity.admin-token=tooShortAdminSecret | GATEWAY_ADMIN_TOKEN must be at least 32 characters, was 19
            gateway.identity.mode=maybe               | GATEWAY_AUTH must be api-keys or none, was 'maybe'
            gateway.key.max-staleness=2s              | GATEWAY_KEY_MAX_STALENESS must be at least 5s
            gateway.key.max-staleness=30              | GATEWAY_KEY_MAX_STALENESS=30 has no unit: write e.g. 30s
            gateway.models[0].type=vllm               | GATEWAY_MODELS_0_NAME is not set
            gateway.models[0].name=code               | GATEWAY_MODELS_0_TYPE is not set
            gateway.request-timeout=5                 | GATEWAY_REQUEST_TIMEOUT=5 has no unit: write e.g. 5s
            gateway.batch.max-wait=20                 | GATEWAY_BATCH_MAX_WAIT=20 has no unit: write e.g. 20s
            gateway.worker.connect-timeout=3          | GATEWAY_WORKER_CONNECT_TIMEOUT=3 has no unit
            gateway.simulated.latency=0               | GATEWAY_SIMULATED_LATENCY=0 has no unit
            gateway.worker.type=foo                   | GATEWAY_WORKER_TYPE=foo is not valid: set it to one of simulated, vllm, llamacpp, sglang, tgi, openai, ollama
            gateway.batch.size=abc                    | GATEWAY_BATCH_SIZE=abc is not valid: set it to a whole number
            gateway.default.tokens-per-day=-1         | GATEWAY_DEFAULT_TOKENS_PER_DAY must be a whole number from 0, or empty for no limit, was -1
            gateway.default.tokens-per-month=1e6      | GATEWAY_DEFAULT_TOKENS_PER_MONTH=1e6 is not valid: set it to a whole number
            gateway.default.requests-per-minute=lots  | GATEWAY_DEFAULT_REQUESTS_PER_MINUTE=lots is not valid: set it to a whole number
            gateway.budget.lease-expiry=1s            | GATEWAY_BUDGET_LEASE_EXPIRY must be at least 3s, was PT1S
            gateway.budget.statement-timeout=20s      | GATEWAY_BUDGET_STATEMENT_TIMEOUT must be positive and at most a third of GATEWAY_BUDGET_LEASE_EXPIRY
            gateway.budget.lease-expiry=30            | GATEWAY_BUDGET_LEASE_EXPIRY=30 has no unit
            logging.structured.format.console=json    | GATEWAY_LOG_FORMAT=json is not a log format: set it to ecs, logstash or gelf
            gateway.header-timeout=10     | GATEWAY_HEADER_TIMEOUT=10 has no unit
            gateway.body-timeout=0s       | GATEWAY_BODY_TIMEOUT must be a positive duration, e.g. 30s
            gateway.max-connections=0     | GATEWAY_MAX_CONNECTIONS must be at least 1, was 0
            gateway.accept-queue=many     | GATEWAY_ACCEPT_QUEUE=many is not valid: set it to a whole number
            """)
    void aBadSettingStopsStartUpWithAMessageNamingIt(String setting, String message, CapturedOutput output) {
        // Given a working configuration with one bad setting (the worker type left unset, or one value off)
        var gateway = setting.equals(WORKER_TYPE_NOT_SET)
                ? TestGateway.simulated().without("gateway.worker.type")
                : TestGateway.simulated().with(setting);

        // When the gateway starts
        assertThatThrownBy(() -> gateway.start().close()).isInstanceOf(InvalidConfigurationException.class);

        // Then it stops with one line on stderr that names the variable and the fix, before anything connected
        assertThat(output.getErr().lines().filter(line -> line.startsWith("batch-gateway did not start: ")))
                .singleElement().asString().contains(message);
        assertThat(output.getOut() + output.getErr())
                .doesNotContain("APPLICATION FAILED TO START", "\tat ", "HikariPool", "Flyway");
    }

    @org.junit.jupiter.api.Test
    void aTooShortAdminTokenIsNamedButNeverShown(CapturedOutput output) {
        assertThatThrownBy(() -> TestGateway.simulated().with("gateway.identity.admin-token", "tooShortAdminSecret").start().close())
                .isInstanceOf(InvalidConfigurationException.class).hasMessageNotContaining("tooShortAdminSecret");
        assertThat(output.getOut() + output.getErr()).contains("GATEWAY_ADMIN_TOKEN").doesNotContain("tooShortAdminSecret");
    }

    @org.junit.jupiter.api.Test
    void aUsageJournalDirectoryThatCannotBeWrittenStopsStartUpNamingIt(@org.junit.jupiter.api.io.TempDir java.nio.file.Path temporary,
            CapturedOutput output) throws Exception {
        // Given a journal directory under a regular file, which no process can create
        var file = java.nio.file.Files.writeString(temporary.resolve("a-file"), "not a directory");

        // When the gateway starts, then it stops with one line naming the setting
        assertThatThrownBy(() -> TestGateway.simulated().with("gateway.usage.journal-dir", file.resolve("journal")).start().close())
                .hasRootCauseInstanceOf(InvalidConfigurationException.class);
        assertThat(output.getErr().lines().filter(line -> line.startsWith("batch-gateway did not start: ")))
                .singleElement().asString().contains("GATEWAY_USAGE_JOURNAL_DIR=" + file.resolve("journal"));
    }
}
