package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;

/**
 * Issue 25's last bound, closed at the cost of availability: a gateway cut off from PostgreSQL for longer than its
 * budget holds' expiry does not answer (nor bill) a request of a user with a token limit that it admitted before the
 * cut, since other instances may lease that budget by then; a user without limits is served and journaled as before.
 */
class BudgetPartitionTest {

    private static final Duration SLACK = Duration.ofSeconds(90);
    private static final long LIMITED = 401;
    private static final long UNLIMITED = 402;

    @TempDir
    Path dataDirectory;

    @TempDir
    Path journal;

    private final HttpClient http = HttpClient.newHttpClient();
    private EmbeddedPostgres database;
    private DatabasePartition partition;
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
        HoldingWorker.release();
        if (partition != null) {
            partition.heal();
        }
        if (gateway != null) {
            gateway.close();
        }
        if (partition != null) {
            partition.close();
        }
        if (database != null) {
            database.close();
        }
    }

    @Test
    void aLimitedUsersAnswerAcrossAPartitionLongerThanTheExpiryIs503AndUnbilledWhileAnUnlimitedUsersIsServedAndJournaled()
            throws Exception {
        // Given a gateway on its own PostgreSQL through a link that can be cut, its budget holds expiring after 6 s, a
        // user with a daily token limit and one without, each served once
        int databasePort = TestGateway.freePort();
        database = TestDatabase.startOwn(databasePort, dataDirectory);
        partition = new DatabasePartition(databasePort);
        gateway = TestGateway.simulated().onDatabaseAt(partition.port()).withConfiguration(Spy.class)
                .with("gateway.batch.max-wait", "0ms")
                .with("gateway.budget.lease-expiry", "6s")
                .with("gateway.budget.statement-timeout", "2s")
                .with("gateway.key.max-staleness", "10m")
                .with("gateway.usage.journal-dir", journal.toString())
                .start();
        var client = TestGateway.client(gateway);
        var limits = client.admin("PUT", "/admin/users/" + LIMITED + "/limits",
                "{\"tokens_per_day\": 100000, \"tokens_per_month\": null, \"requests_per_minute\": null}");
        assertThat(limits.statusCode()).as(limits.body()).isEqualTo(200);
        String limitedKey = client.key(LIMITED);
        String unlimitedKey = client.key(UNLIMITED);
        int port = TestGateway.port(gateway);
        assertThat(post(port, "/complete", limitedKey, "{\"prompt\": \"before\"}").statusCode()).isEqualTo(200);
        assertThat(post(port, "/complete", unlimitedKey, "{\"prompt\": \"before\"}").statusCode()).isEqualTo(200);
        HoldingWorker.release(); // a fresh hold for this test's batches

        // When each sends requests that the worker holds (the limited one on /complete and on /v1), and the link to
        // PostgreSQL is cut until the store counts the gateway's hold as expired
        var limitedComplete = postAsync(port, "/complete", limitedKey, "{\"prompt\": \"hold limited\", \"max_tokens\": 8}");
        var limitedOpenAi = postAsync(port, "/v1/completions", limitedKey,
                "{\"model\": \"simulated\", \"prompt\": \"hold limited openai\", \"max_tokens\": 8}");
        var unlimited = postAsync(port, "/complete", unlimitedKey, "{\"prompt\": \"hold unlimited\", \"max_tokens\": 8}");
        awaitCondition("the worker holds the three prompts", () -> HoldingWorker.prompts()
                .containsAll(java.util.List.of("hold limited", "hold limited openai", "hold unlimited")));
        partition.cut();
        long cutAt = System.nanoTime();
        var direct = new SingleConnectionDataSource(
                "jdbc:postgresql://localhost:" + databasePort + "/postgres", "postgres", "postgres", true);
        try {
            var jdbc = JdbcClient.create(direct);
            awaitCondition("the store counts the cut-off gateway's hold of the limited user as expired", () -> jdbc.sql("""
                    SELECT count(*) FROM budget_hold WHERE user_id = ? AND held > 0 AND expires_at > clock_timestamp()""")
                    .param(LIMITED).query(Long.class).single() == 0);
            Duration expiredAfter = Duration.ofNanos(System.nanoTime() - cutAt);
            assertThat(expiredAfter.toSeconds()).as("the hold expired %s after the cut, expected within the 6 s expiry"
                    + " (and a loaded machine's slack)", words(expiredAfter)).isLessThan(30);
            HoldingWorker.release();

            // Then the limited user's answers are 503 with Retry-After, in problem+json and in OpenAI's shape, and the
            // unlimited user's is served
            var refused = limitedComplete.get(SLACK.toSeconds(), TimeUnit.SECONDS);
            assertThat(refused.statusCode()).as(refused.body()).isEqualTo(503);
            assertThat(refused.headers().firstValue("Retry-After")).isPresent();
            assertThat(refused.headers().firstValue("Content-Type")).hasValueSatisfying(type ->
                    assertThat(type).startsWith("application/problem+json"));
            assertThat(refused.body()).contains("nothing was billed");
            var refusedOpenAi = limitedOpenAi.get(SLACK.toSeconds(), TimeUnit.SECONDS);
            assertThat(refusedOpenAi.statusCode()).as(refusedOpenAi.body()).isEqualTo(503);
            assertThat(refusedOpenAi.headers().firstValue("Retry-After")).isPresent();
            assertThat(refusedOpenAi.body()).contains("\"error\"");
            var served = unlimited.get(SLACK.toSeconds(), TimeUnit.SECONDS);
            assertThat(served.statusCode()).as(served.body()).isEqualTo(200);

            // And once the link heals, the unlimited user's row is in the table (journaled, then replayed) and the
            // limited user was billed only what it was served before the cut
            partition.heal();
            awaitCondition("the unlimited user's journaled row replayed", () -> UsageRows.of(jdbc, UNLIMITED) == 2);
            assertThat(UsageRows.of(jdbc, LIMITED)).as("the limited user's rows").isEqualTo(1);
            long billedRows = jdbc.sql("SELECT coalesce(sum(total_tokens), 0) FROM token_usage WHERE user_id = ?")
                    .param(LIMITED).query(Long.class).single();
            long charged = jdbc.sql("SELECT coalesce(sum(consumed), 0) FROM budget_window WHERE user_id = ? AND kind = 'day'")
                    .param(LIMITED).query(Long.class).single();
            assertThat(charged).as("what the limited user's day window counts billed").isEqualTo(billedRows);
            assertThat(client.get("/actuator/prometheus").body())
                    .containsPattern("gateway_usage_rows_unaccounted_total\\{[^}]*kind=\"unbilled\"[^}]*} 2\\.0");
        } finally {
            direct.destroy();
        }
    }

    private CompletableFuture<HttpResponse<String>> postAsync(int port, String path, String key, String body) {
        return http.sendAsync(HttpRequest.newBuilder(URI.create("http://localhost:" + port + path))
                        .header("Content-Type", "application/json")
                        .header("Authorization", "Bearer " + key)
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .timeout(SLACK)
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(int port, String path, String key, String body) throws Exception {
        return postAsync(port, path, key, body).get(SLACK.toSeconds(), TimeUnit.SECONDS);
    }

    private static String words(Duration duration) {
        return duration.toMillis() < 1000 ? duration.toMillis() + " ms" : String.format("%.1f s", duration.toMillis() / 1000.0);
    }

    private static void awaitCondition(String what, BooleanSupplier condition) throws InterruptedException {
        long start = System.nanoTime();
        while (!condition.getAsBoolean()) {
            Duration waited = Duration.ofNanos(System.nanoTime() - start);
            if (waited.compareTo(SLACK) > 0) {
                fail("waited %s for %s, expected it within %s", words(waited), what, words(SLACK));
            }
            Thread.sleep(50);
        }
    }
}
