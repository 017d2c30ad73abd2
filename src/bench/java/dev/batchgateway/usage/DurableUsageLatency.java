package dev.batchgateway.usage;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.UsageEvents;
import dev.batchgateway.completion.UsageLedger;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageRepository;
import dev.batchgateway.completion.UsageWriteException;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.flywaydb.core.Flyway;

/**
 * The latency the durable ledger adds to each answer: the time from a batch's rows reaching {@link UsageLedger#record}
 * to their future completing (committed to PostgreSQL, or fsynced to the journal), with batches of eight rows arriving
 * open-loop at a fixed rate (default 125 batches/s = 1,000 completions/s), each on a thread of its own as the
 * scheduler's batch threads. Before issue 25 an answer did not wait at all, so this is the whole added latency. Phases:
 * PostgreSQL as configured (the embedded one runs with {@code synchronous_commit=off}), PostgreSQL with
 * {@code synchronous_commit=on} (every commit waits for its WAL flush), and the store away (every row to the journal,
 * one fsync per group). Not a test: {@code bench/durable-latency.sh}.
 *
 * <p>Arguments: completions per second (default 1000), seconds per phase (default 20).
 */
public final class DurableUsageLatency {

    private static final int BATCH_SIZE = 8;

    public static void main(String[] args) throws Exception {
        int rate = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 20;
        String url = System.getenv("BENCH_DATABASE_URL");
        EmbeddedPostgres embedded = null;
        if (url == null || url.isBlank()) {
            embedded = EmbeddedPostgres.builder().start();
            url = embedded.getJdbcUrl("postgres", "postgres");
        }
        System.out.printf(Locale.ROOT, "durable usage latency: %,d completions/s in batches of %d, %d s a phase, %d cores, Java %s%n",
                rate, BATCH_SIZE, seconds, Runtime.getRuntime().availableProcessors(), Runtime.version());
        try {
            for (String synchronousCommit : List.of("", "on")) {
                try (var dataSource = dataSource(url, synchronousCommit)) {
                    Flyway.configure().dataSource(dataSource).load().migrate();
                    var repository = new JdbcUsageRepository(new org.springframework.jdbc.core.JdbcTemplate(dataSource), Duration.ofSeconds(2));
                    String setting = org.springframework.jdbc.core.simple.JdbcClient.create(dataSource)
                            .sql("SHOW synchronous_commit").query(String.class).single();
                    phase("PostgreSQL, synchronous_commit=" + setting, repository, rate, Math.min(5, seconds), false);
                    phase("PostgreSQL, synchronous_commit=" + setting, repository, rate, seconds, true);
                }
            }
            UsageRepository away = rows -> {
                throw new UsageWriteException.Recoverable("away", null);
            };
            phase("PostgreSQL away: the journal, one fsync a group", away, rate, seconds, true);
        } finally {
            if (embedded != null) {
                embedded.close();
            }
        }
    }

    private static HikariDataSource dataSource(String url, String synchronousCommit) {
        var config = new HikariConfig();
        config.setJdbcUrl(url);
        config.setUsername(env("BENCH_DATABASE_USERNAME", "postgres"));
        config.setPassword(env("BENCH_DATABASE_PASSWORD", "postgres"));
        if (!synchronousCommit.isEmpty()) {
            config.setConnectionInitSql("SET synchronous_commit = " + synchronousCommit);
        }
        return new HikariDataSource(config);
    }

    private static void phase(String name, UsageRepository repository, int rate, int seconds, boolean report) throws Exception {
        var directory = Files.createTempDirectory("usage-journal-bench");
        var commits = new AtomicInteger();
        var committedRows = new AtomicLong();
        UsageEvents events = new UsageEvents() {
            @Override
            public void written(int rows, Duration latency) {
                commits.incrementAndGet();
                committedRows.addAndGet(rows);
            }

            @Override
            public void journaled(int rows, Duration latency) {
                commits.incrementAndGet();
                committedRows.addAndGet(rows);
            }
        };
        try (var journal = new FileUsageJournal(directory, 1L << 30)) {
            var ledger = new UsageLedger(repository, journal, 100_000, 1000, Duration.ofMillis(100), Duration.ofSeconds(5),
                    Ticker.system(), events).start();
            var waits = new ConcurrentLinkedQueue<Long>();
            var failures = new AtomicInteger();
            long interval = TimeUnit.SECONDS.toNanos(1) * BATCH_SIZE / rate;
            int batches = rate * seconds / BATCH_SIZE;
            long start = System.nanoTime();
            try (var batchThreads = Executors.newCachedThreadPool(Thread.ofPlatform().daemon().factory())) {
                for (int i = 0; i < batches; i++) {
                    long due = start + i * interval;
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        LockSupport.parkNanos(wait);
                    }
                    batchThreads.execute(() -> {
                        long recorded = System.nanoTime();
                        CompletableFuture<Void> durable = ledger.record(rows(), List.of());
                        try {
                            durable.get(30, TimeUnit.SECONDS);
                            waits.add(System.nanoTime() - recorded);
                        } catch (Exception e) {
                            failures.incrementAndGet();
                        }
                    });
                }
            }
            ledger.close(Duration.ofSeconds(30));
            if (report) {
                long[] sorted = waits.stream().mapToLong(Long::longValue).sorted().toArray();
                System.out.printf(Locale.ROOT, "%-48s batches %,d, failed %d, rows a commit %.1f, wait p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms%n",
                        name, sorted.length, failures.get(), committedRows.get() / (double) Math.max(1, commits.get()),
                        at(sorted, 0.5), at(sorted, 0.9), at(sorted, 0.99), sorted.length == 0 ? Double.NaN : sorted[sorted.length - 1] / 1e6);
            }
        }
    }

    private static List<UsageRecord> rows() {
        List<UsageRecord> rows = new ArrayList<>(BATCH_SIZE);
        Instant now = Instant.now();
        for (int i = 0; i < BATCH_SIZE; i++) {
            rows.add(new UsageRecord(UUID.randomUUID(), 1 + i, new TokenUsage(12, 16), "bench", now));
        }
        return rows;
    }

    private static double at(long[] sorted, double quantile) {
        return sorted.length == 0 ? Double.NaN : sorted[Math.min(sorted.length - 1, (int) (quantile * sorted.length))] / 1e6;
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }
}
