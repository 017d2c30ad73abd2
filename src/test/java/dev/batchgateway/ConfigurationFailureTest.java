package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/** A bad setting stops start-up with a message naming the variable, not a stack trace. */
@ExtendWith(OutputCaptureExtension.class)
class ConfigurationFailureTest {

    private static final String WORKER_TYPE_NOT_SET = "(worker type not set)";

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            (worker type not set)                     | GATEWAY_WORKER_TYPE is not set: set it to simulated, vllm or ollama
            gateway.batch.size=0                      | GATEWAY_BATCH_SIZE must be at least 1, was 0
            gateway.batch.max-wait=-5ms               | GATEWAY_BATCH_MAX_WAIT must not be negative
            gateway.worker.timeout=0s                 | GATEWAY_WORKER_TIMEOUT must be a positive duration
            gateway.request-timeout=-1s               | GATEWAY_REQUEST_TIMEOUT must be a positive duration
            gateway.queue-capacity=0                  | GATEWAY_QUEUE_CAPACITY must be at least 1
            gateway.worker.max-concurrent-batches=0   | GATEWAY_WORKER_MAX_CONCURRENT_BATCHES must be at least 1
            gateway.max-tokens=0                      | GATEWAY_MAX_TOKENS must be at least 1
            gateway.usage.buffer-capacity=0           | GATEWAY_USAGE_BUFFER_CAPACITY must be at least 1
            gateway.identity.admin-token=tooShortAdminSecret | GATEWAY_ADMIN_TOKEN must be at least 32 characters, was 19
            gateway.identity.mode=maybe               | GATEWAY_AUTH must be api-keys or none, was 'maybe'
            gateway.models[0].type=vllm               | GATEWAY_MODELS_0_NAME is not set
            gateway.models[0].name=code               | GATEWAY_MODELS_0_TYPE is not set
            """)
    void aBadSettingStopsStartUpWithAMessageNamingIt(String setting, String message, CapturedOutput output) {
        // Given a working configuration with one bad setting (the worker type left unset, or one value off)
        var database = TestDatabase.get();
        var args = new ArrayList<>(List.of(
                "--server.port=0",
                "--spring.datasource.url=" + database.url(),
                "--spring.datasource.username=" + database.username(),
                "--spring.datasource.password=" + database.password()));
        if (!setting.equals(WORKER_TYPE_NOT_SET)) {
            args.addAll(List.of("--gateway.worker.type=simulated", "--" + setting));
        }

        // When the gateway starts, then it stops with a failure analysis that names the variable
        assertThatThrownBy(() -> new SpringApplicationBuilder(BatchGatewayApplication.class)
                .run(args.toArray(String[]::new))
                .close()).isNotNull();
        assertThat(output.getOut() + output.getErr())
                .contains("APPLICATION FAILED TO START")
                .contains(message);
    }

    @org.junit.jupiter.api.Test
    void aTooShortAdminTokenIsNamedButNeverShown(CapturedOutput output) {
        var database = TestDatabase.get();
        assertThatThrownBy(() -> new SpringApplicationBuilder(BatchGatewayApplication.class).run("--server.port=0",
                "--spring.datasource.url=" + database.url(), "--spring.datasource.username=" + database.username(),
                "--spring.datasource.password=" + database.password(), "--gateway.worker.type=simulated",
                "--gateway.identity.admin-token=tooShortAdminSecret").close()).isNotNull();
        assertThat(output.getOut() + output.getErr()).contains("GATEWAY_ADMIN_TOKEN").doesNotContain("tooShortAdminSecret");
    }
}
