package dev.batchgateway.usage;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.UsageEvents;
import dev.batchgateway.completion.UsageLedger;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageWriteException;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.flywaydb.core.Flyway;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * How many usage rows per second one gateway writes to PostgreSQL when batches finish back to back: the real
 * {@link UsageLedger} (one writer, up to 1000 rows a write) over the real {@link JdbcUsageRepository}, a Hikari pool
 * and a local PostgreSQL. Batches of eight rows are recorded as fast as one thread can; the clock stops when the last
 * row is in the table. Not a test: run {@code bench/usage-writes.sh} (README, Performance).
 *
 * <p>Arguments: rows per round (default 50000), rounds (default 5), users the rows are spread over, one after another
 * (default 1; each distinct user and day is one more daily rollup row to update in a write). {@code BENCH_DATABASE_URL} (with
 * {@code _USERNAME}/{@code _PASSWORD}) points at a PostgreSQL to use; without it an embedded PostgreSQL 17 is started.
 */
public final class UsageWriteBenchmark {

    private static final int BATCH_SIZE = 8;
    private static final int ROWS_PER_WRITE = 1000; // as GatewayConfiguration
    private static int users = 1;

    public static void main(String[] args) throws Exception {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 50_000;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        users = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        String url = System.getenv("BENCH_DATABASE_URL");
        EmbeddedPostgres embedded = null;
        String username = env("BENCH_DATABASE_USERNAME", "postgres");
        String password = env("BENCH_DATABASE_PASSWORD", "postgres");
        if (url == null || url.isBlank()) {
            embedded = EmbeddedPostgres.builder().start();
            url = embedded.getJdbcUrl("postgres", "postgres");
        }
        var config = new HikariConfig();
        config.setJdbcUrl(url);
        config.setUsername(username);
        config.setPassword(password);
        try (var dataSource = new HikariDataSource(config)) {
            Flyway.configure().dataSource(dataSource).load().migrate();
            var jdbc = JdbcClient.create(dataSource);
            String server = jdbc.sql("SHOW server_version").query(String.class).single();
            System.out.printf(Locale.ROOT, "usage write benchmark: %,d rows per round of %,d users in batches of %d, %d rounds, "
                    + "PostgreSQL %s (%s), %d cores, Java %s%n", rows, users, BATCH_SIZE, rounds, server,
                    embedded == null ? "BENCH_DATABASE_URL" : "embedded", Runtime.getRuntime().availableProcessors(),
                    Runtime.version());
            var repository = new JdbcUsageRepository(new JdbcTemplate(dataSource), Duration.ofSeconds(30));
            round(jdbc, repository, Math.min(rows, 10_000), "warm-up");
            for (int i = 1; i <= rounds; i++) {
                round(jdbc, repository, rows, "round " + i);
            }
        } finally {
            if (embedded != null) {
                embedded.close();
            }
        }
    }

    private static void round(JdbcClient jdbc, JdbcUsageRepository repository, int count, String name) throws InterruptedException {
        long user = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE - users);
        var writes = new AtomicInteger();
        var writeNanos = new AtomicLong();
        var failures = new AtomicInteger();
        UsageEvents events = new UsageEvents() {
            @Override
            public void written(int rows, Duration latency) {
                writes.incrementAndGet();
                writeNanos.addAndGet(latency.toNanos());
            }

            @Override
            public void writeFailed(UsageWriteException failure) {
                failures.incrementAndGet();
            }
        };
        var ledger = new UsageLedger(repository, Integer.MAX_VALUE, ROWS_PER_WRITE,
                Duration.ofMillis(100), Duration.ofSeconds(5), Ticker.system(), events).start();
        List<List<UsageRecord>> batches = batches(user, count);

        long started = System.nanoTime();
        for (List<UsageRecord> batch : batches) {
            ledger.record(batch);
        }
        long recorded = System.nanoTime();
        List<UsageRecord> unwritten = ledger.close(Duration.ofMinutes(5));
        long finished = System.nanoTime();

        long stored = jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id BETWEEN ? AND ?")
                .params(user, user + users - 1).query(Long.class).single();
        if (stored != count || !unwritten.isEmpty() || failures.get() > 0) {
            throw new IllegalStateException(name + ": " + stored + " rows stored of " + count + ", "
                    + unwritten.size() + " unwritten, " + failures.get() + " failed writes");
        }
        double seconds = (finished - started) / 1e9;
        System.out.printf(Locale.ROOT, "%-8s %,7d rows in %6.3f s = %,9.0f rows/s; %3d writes of %5.0f rows on average, "
                        + "%5.1f ms a write; recording took %5.1f ms%n",
                name, count, seconds, count / seconds, writes.get(), (double) count / writes.get(),
                writeNanos.get() / 1e6 / writes.get(), (recorded - started) / 1e6);
    }

    /** Rows as the scheduler hands them over: one list per finished batch. */
    private static List<List<UsageRecord>> batches(long user, int count) {
        var random = ThreadLocalRandom.current();
        var servedAt = Instant.now();
        List<List<UsageRecord>> batches = new ArrayList<>();
        List<UsageRecord> batch = new ArrayList<>(BATCH_SIZE);
        for (int i = 0; i < count; i++) {
            batch.add(new UsageRecord(UUID.randomUUID(), user + i % users,
                    new TokenUsage(random.nextInt(1, 2000), random.nextInt(1, 256)), "simulated", servedAt));
            if (batch.size() == BATCH_SIZE || i == count - 1) {
                batches.add(batch);
                batch = new ArrayList<>(BATCH_SIZE);
            }
        }
        return batches;
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }
}
