package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.UsageLedger;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;

/**
 * The 503 of a key lookup while the database is away: a key this instance has not seen cannot be checked, so its
 * request is turned away with 503 + Retry-After before anything is queued: the worker never sees it and nothing is
 * billed, which is what lets a load balancer send it to another instance. A key seen before is still served.
 */
class KeyStoreOutageTest {

    private static final Duration SLACK = Duration.ofSeconds(60);

    @TempDir
    Path dataDirectory;

    private final HttpClient http = HttpClient.newHttpClient();
    private EmbeddedPostgres database;
    private ConfigurableApplicationContext gateway;

    @Configuration(proxyBeanMethods = false)
    static class Spy {
        @Bean
        static BeanPostProcessor holdingWorker() {
            return HoldingWorker.installer();
        }
    }

    @AfterEach
    void stop() throws IOException {
        if (gateway != null) {
            gateway.close();
        }
        if (database != null) {
            database.close();
        }
    }

    @Test
    void anUnseenKeyWhileTheDatabaseIsAwayIsA503AndNeverReachesTheWorker() throws Exception {
        // Given the gateway on its own PostgreSQL, a key it has served, and a key it has never looked up
        int databasePort = freePort();
        database = start(databasePort);
        gateway = new SpringApplicationBuilder(BatchGatewayApplication.class, Spy.class).run(
                "--server.port=0",
                "--management.server.port=0",
                "--spring.datasource.url=jdbc:postgresql://localhost:" + databasePort + "/postgres",
                "--spring.datasource.username=postgres",
                "--spring.datasource.password=postgres",
                "--gateway.worker.type=simulated",
                "--gateway.batch.max-wait=0ms",
                "--gateway.identity.admin-token=" + GatewayApplicationTest.ADMIN_TOKEN);
        int port = ((WebServerApplicationContext) gateway).getWebServer().getPort();
        var client = new GatewayClient(port);
        String seen = client.key(101);
        String unseen = new GatewayClient(port).key(102); // minted, so in the database, never used on /complete
        assertThat(post(port, "/complete", seen, "{\"prompt\": \"seen before\"}").statusCode()).isEqualTo(200);

        // When the database goes away
        database.close();
        database = null;

        // Then a request with the unseen key is turned away with 503 and Retry-After, on /complete and on /v1
        String prompt = "unseen key " + UUID.randomUUID();
        var refused = post(port, "/complete", unseen, "{\"prompt\": \"" + prompt + "\"}");
        assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
        assertThat(refused.headers().firstValue("Retry-After")).isPresent();
        assertThat(refused.body()).contains("the key store is unavailable");
        var refusedOpenAi = post(port, "/v1/completions", unseen,
                "{\"model\": \"simulated\", \"prompt\": \"" + prompt + "\", \"max_tokens\": 8}");
        assertThat(refusedOpenAi.statusCode()).as(refusedOpenAi.body()).isEqualTo(503);
        assertThat(refusedOpenAi.headers().firstValue("Retry-After")).isPresent();

        // And the key seen before is still served (its row waits in the usage buffer)
        assertThat(post(port, "/complete", seen, "{\"prompt\": \"seen while away\"}").statusCode()).isEqualTo(200);

        // And the worker never saw the refused prompt
        assertThat(HoldingWorker.prompts()).contains("seen while away").doesNotContain(prompt);

        // And once the database is back, the served requests are billed and the refused ones are not
        database = start(databasePort);
        UsageLedger ledger = gateway.getBean(UsageLedger.class);
        awaitCondition("the usage buffer drained", () -> ledger.pending() == 0);
        var store = new SingleConnectionDataSource(
                "jdbc:postgresql://localhost:" + databasePort + "/postgres", "postgres", "postgres", true);
        try {
            var jdbc = JdbcClient.create(store);
            assertThat(UsageRows.of(jdbc, 101)).isEqualTo(2);
            assertThat(UsageRows.of(jdbc, 102)).isZero();
        } finally {
            store.destroy();
        }
    }

    private HttpResponse<String> post(int port, String path, String key, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + port + path))
                        .header("Content-Type", "application/json")
                        .header("Authorization", "Bearer " + key)
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .timeout(SLACK)
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private EmbeddedPostgres start(int port) throws IOException {
        return EmbeddedPostgres.builder()
                .setPort(port)
                .setDataDirectory(dataDirectory)
                .setCleanDataDirectory(false)
                .start();
    }

    private static int freePort() throws IOException {
        try (var socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    private static void awaitCondition(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + SLACK.toNanos();
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as(what + " within " + SLACK).isLessThan(deadline);
            Thread.sleep(20);
        }
    }
}
