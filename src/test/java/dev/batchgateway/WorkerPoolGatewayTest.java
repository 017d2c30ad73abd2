package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.worker.FakeVllm;
import dev.batchgateway.worker.HangingServer;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/** A pool of a hanging worker and a good one, with a 1 s worker timeout: the hung batch is a 504, the rest is served. */
@GatewayApplicationTest(properties = {"gateway.worker.type=vllm", "gateway.worker.model=m", "gateway.worker.timeout=1s",
                "gateway.worker.back-off=1h", "gateway.worker.max-consecutive-timeouts=1", "gateway.batch.size=1",
                "gateway.batch.max-wait=0ms"})
class WorkerPoolGatewayTest {

    static final HangingServer hanging = new HangingServer();
    static final FakeVllm good = new FakeVllm("m");

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        // the hanging worker first: the pool's first batch goes to it
        registry.add("gateway.worker.url", () -> hanging.url() + "," + good.url());
    }

    @AfterAll
    static void stopWorkers() throws IOException {
        hanging.close();
        good.close();
    }

    @Autowired
    JdbcClient jdbc;

    @Autowired
    GatewayClient gateway;

    @Test
    void aHangingWorkerIs504InAboutTheTimeoutWhileTheOtherWorkerKeepsServing() throws Exception {
        // Given two callers of different users
        long hungUser = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        long servedUser = hungUser == 1 ? 2 : hungUser - 1;

        // When the first posts (its batch goes to the hanging worker) and the second posts while it hangs
        long started = System.nanoTime();
        var first = CompletableFuture.supplyAsync(() -> post("first", hungUser));
        assertThat(hanging.posted.await(10, TimeUnit.SECONDS)).isTrue();
        var second = post("second", servedUser);
        HttpResponse<String> hung = first.get(30, TimeUnit.SECONDS);
        Duration took = Duration.ofNanos(System.nanoTime() - started);

        // Then the second is served by the other worker, and the first is a 504 after about a second
        assertThat(second.statusCode()).as(second.body()).isEqualTo(200);
        assertThat(hung.statusCode()).as(hung.body()).isEqualTo(504);
        assertThat(hung.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        assertThat(took).isGreaterThanOrEqualTo(Duration.ofMillis(900)).isLessThan(Duration.ofSeconds(6));
        assertThat(hanging.closedByCaller.await(10, TimeUnit.SECONDS)).as("the hung call's connection closed").isTrue();

        // And the hanging worker is out of rotation (one timeout in a row is its limit here): the next requests all go to
        // the good one
        for (int i = 0; i < 4; i++) {
            assertThat(post("more " + i, servedUser).statusCode()).isEqualTo(200);
        }
        assertThat(good.calls()).hasSize(5);

        // And Prometheus sees it: the hanging server's gauge is 0, the good one's 1
        assertThat(gateway.get("/actuator/prometheus").body()).contains(
                "gateway_worker_up{server=\"" + hanging.url() + "\",worker=\"m\"} 0.0",
                "gateway_worker_up{server=\"" + good.url() + "\",worker=\"m\"} 1.0");

        // And the failed request wrote no usage row, while the served ones did
        UsageRows.await(jdbc, servedUser, 5);
        assertThat(UsageRows.of(jdbc, hungUser)).isZero();
    }

    private HttpResponse<String> post(String prompt, long user) {
        return gateway.complete(Map.of("prompt", prompt, "user_id", user));
    }
}
