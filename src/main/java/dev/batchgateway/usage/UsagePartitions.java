package dev.batchgateway.usage;

import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.stereotype.Component;

/**
 * Keeps {@code token_usage}'s monthly partitions: at start and every hour, the months up to {@link #AHEAD} from now
 * are created, and with {@code GATEWAY_USAGE_RETENTION} set, the months all of whose rows are older than it, and rolled
 * up ({@link DailyRollups}), are dropped whole (their totals stay in {@code usage_daily}). The work is
 * {@code token_usage_maintain} in PostgreSQL (V5, V6), which one instance at a time does; a database that is away is
 * tried again the next hour, and meanwhile rows of a month without its partition still land, in the default partition.
 */
@Component
class UsagePartitions {

    private static final Logger LOG = LoggerFactory.getLogger(UsagePartitions.class);
    static final Duration AHEAD = Duration.ofDays(62);
    private static final Duration EVERY = Duration.ofHours(1);

    private final JdbcClient jdbc;
    private final Duration retention;
    private final ScheduledExecutorService timer =
            Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().name("usage-partitions").factory());

    @Autowired
    UsagePartitions(JdbcClient jdbc, UsageSettings settings) {
        this(jdbc, settings.retention());
    }

    /** @param retention how long rows are kept; null: forever */
    UsagePartitions(JdbcClient jdbc, Duration retention) {
        this.jdbc = jdbc;
        this.retention = retention;
    }

    @PostConstruct
    void start() {
        timer.scheduleWithFixedDelay(this::maintainQuietly, 0, EVERY.toSeconds(), TimeUnit.SECONDS);
    }

    @PreDestroy
    void stop() {
        timer.shutdownNow();
    }

    /** Creates the months ahead and drops the months past retention; returns {created, dropped}. */
    int[] maintain() {
        return jdbc.sql("SELECT created, dropped FROM token_usage_maintain(?::bigint * interval '1 second', ?::bigint * interval '1 second')")
                .params(AHEAD.toSeconds(), retention == null ? null : retention.toSeconds())
                .query((rs, n) -> new int[] {rs.getInt(1), rs.getInt(2)})
                .single();
    }

    private void maintainQuietly() {
        try {
            int[] done = maintain();
            if (done[0] > 0 || done[1] > 0) {
                LOG.info("usage partitions: {} months created ahead, {} months past retention ({}) dropped",
                        done[0], done[1], retention);
            }
        } catch (DataAccessException away) {
            LOG.warn("usage partitions could not be maintained, tried again in {}: {}", EVERY, away.getMostSpecificCause().getMessage());
        }
    }
}
