package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The JDK's keep-alive is read from the command line only; the gateway says when it outlasts GATEWAY_WORKER_IDLE_TIMEOUT. */
class WorkerConnectionsTest {

    @Test
    void theKeepAliveIsReadAsTheJdkReadsItThirtySecondsUnsetOrUnreadable() {
        assertThat(WorkerConnections.keepAliveSeconds("4")).isEqualTo(4);
        assertThat(WorkerConnections.keepAliveSeconds(null)).isEqualTo(30);
        assertThat(WorkerConnections.keepAliveSeconds("4s")).isEqualTo(30);
        assertThat(WorkerConnections.keepAliveSeconds("-1")).isEqualTo(30);
    }

    @Test
    void aJvmThatKeepsConnectionsLongerThanTheIdleTimeoutIsToldWithTheFlagToGive() {
        // Given a JVM started without the flag: the JDK keeps idle connections 30 s
        var told = WorkerConnections.longerThanWanted(Duration.ofSeconds(4), null);

        // Then the operator reads what is kept, what is wanted, and the flag that fixes it
        assertThat(told).hasValueSatisfying(message -> assertThat(message)
                .contains("stay open 30 s", "jdk.httpclient.keepalive.timeout unset", "GATEWAY_WORKER_IDLE_TIMEOUT=4s",
                        "-Djdk.httpclient.keepalive.timeout=4"));
        // And nothing is said when the command line gave the idle timeout or less
        assertThat(WorkerConnections.longerThanWanted(Duration.ofSeconds(4), "4")).isEmpty();
        assertThat(WorkerConnections.longerThanWanted(Duration.ofSeconds(10), "4")).isEmpty();
    }

}
