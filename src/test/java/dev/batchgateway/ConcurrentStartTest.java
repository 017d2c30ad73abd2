package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;

/**
 * Two instances of a fresh rollout start at the same moment against an empty database: Flyway's lock (a PostgreSQL
 * advisory lock) lets one migrate while the other waits, and both come up; every migration is applied exactly once.
 */
class ConcurrentStartTest {

    private static final long SLACK_SECONDS = 120;

    @Test
    void twoInstancesStartingAtOnceOnAnEmptyDatabaseBothComeUpAndMigrateOnce() throws Exception {
        // Given an empty database of its own on the test PostgreSQL
        var server = TestDatabase.get();
        String name = "concurrent_start_" + UUID.randomUUID().toString().replace("-", "");
        var admin = new SingleConnectionDataSource(server.url(), server.username(), server.password(), true);
        try {
            JdbcClient.create(admin).sql("CREATE DATABASE " + name).update();
        } finally {
            admin.destroy();
        }
        String url = server.url().replaceFirst("^(jdbc:postgresql://[^/]+/)[^?]*", "$1" + name);

        // When two instances start at the same moment
        List<ConfigurableApplicationContext> instances = new ArrayList<>();
        try (var starting = Executors.newVirtualThreadPerTaskExecutor()) {
            // they meet once logging is set up (Spring Boot's logging start-up is not safe to run twice at once in one
            // JVM, two real instances are two JVMs), and go on together from there: to the database and Flyway
            var together = new CyclicBarrier(2);
            var firstLogs = new java.util.concurrent.CountDownLatch(1);
            List<CompletableFuture<ConfigurableApplicationContext>> started = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                boolean second = i == 1;
                started.add(CompletableFuture.supplyAsync(() -> {
                    if (second) {
                        awaitLatch(firstLogs);
                    }
                    return TestGateway.simulated().onDatabase(url, server.username(), server.password())
                            .withInitializer(context -> {
                                firstLogs.countDown();
                                await(together);
                            })
                            .start();
                }, starting));
            }
            try {
                // Then both come up
                for (var instance : started) {
                    instances.add(instance.get(SLACK_SECONDS, TimeUnit.SECONDS));
                }
                assertThat(instances).allSatisfy(instance -> assertThat(instance.isRunning()).isTrue());

                // And each migration was applied once, successfully, by one of them
                var store = new SingleConnectionDataSource(url, server.username(), server.password(), true);
                try {
                    var history = JdbcClient.create(store).sql("""
                                    SELECT version, count(*), bool_and(success) FROM flyway_schema_history
                                    WHERE version IS NOT NULL GROUP BY version ORDER BY version::int""")
                            .query((rs, n) -> rs.getString(1) + ":" + rs.getLong(2) + ":" + rs.getBoolean(3))
                            .list();
                    List<String> once;
                    try (var migrations = Files.list(Path.of("src/main/resources/db/migration"))) {
                        once = migrations.map(file -> file.getFileName().toString())
                                .filter(file -> file.matches("V\\d+__.*\\.sql"))
                                .map(file -> file.substring(1, file.indexOf("__")) + ":1:true")
                                .sorted(java.util.Comparator.comparingInt(entry -> Integer.parseInt(entry.split(":")[0])))
                                .toList();
                    }
                    assertThat(once).isNotEmpty();
                    assertThat(history).isEqualTo(once);
                } finally {
                    store.destroy();
                }
            } finally {
                // an instance that did start is closed even when the other failed
                for (var instance : started) {
                    instance.thenAccept(ConfigurableApplicationContext::close);
                }
            }
        }
    }

    private static void awaitLatch(java.util.concurrent.CountDownLatch latch) {
        try {
            if (!latch.await(SLACK_SECONDS, TimeUnit.SECONDS)) {
                throw new IllegalStateException("the first instance did not get as far as its context");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static void await(CyclicBarrier barrier) {
        try {
            barrier.await(SLACK_SECONDS, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("the two instances did not get to start together", e);
        }
    }
}
