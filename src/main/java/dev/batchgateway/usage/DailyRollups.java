package dev.batchgateway.usage;

import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Component;

/**
 * Rolls up the days that have ended into {@code usage_daily}, off the write path: at start and every
 * {@link #EVERY}, the days before today (UTC, by the database's clock) are closed and then summed, one day a
 * transaction (V6: {@code usage_rollup_close}, {@code usage_rollup_day}). Until a day is rolled up its totals are read
 * from its rows, so a gateway that is down or a database that is away only makes {@code /usage} read more rows.
 * Instances may all run it: each day is rolled up once.
 */
@Component
class DailyRollups {

    private static final Logger LOG = LoggerFactory.getLogger(DailyRollups.class);
    private static final Duration EVERY = Duration.ofMinutes(5);

    private final JdbcClient jdbc;
    private final ScheduledExecutorService timer =
            Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().name("usage-rollups").factory());

    DailyRollups(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    @PostConstruct
    void start() {
        timer.scheduleWithFixedDelay(this::rollUpQuietly, 0, EVERY.toSeconds(), TimeUnit.SECONDS);
    }

    @PreDestroy
    void stop() {
        timer.shutdownNow();
    }

    /** Rolls up every day before today's that is not rolled up yet; returns those days, oldest first. */
    List<LocalDate> rollUp() {
        jdbc.sql("SELECT usage_rollup_close((now() AT TIME ZONE 'UTC')::date)").query(Boolean.class).single();
        return rollUpClosedDays();
    }

    /** Rolls up the closed days not rolled up yet, each in a transaction of its own; returns them, oldest first. */
    List<LocalDate> rollUpClosedDays() {
        var days = new ArrayList<LocalDate>();
        for (LocalDate day = rollUpOneDay(); day != null; day = rollUpOneDay()) {
            days.add(day);
        }
        return days;
    }

    private LocalDate rollUpOneDay() {
        return jdbc.sql("SELECT usage_rollup_day()").query(LocalDate.class).optional().orElse(null);
    }

    private void rollUpQuietly() {
        try {
            List<LocalDate> days = rollUp();
            if (!days.isEmpty()) {
                LOG.info("usage rolled up for {} day(s), through {}", days.size(), days.getLast());
            }
        } catch (DataAccessException away) {
            LOG.warn("usage could not be rolled up, tried again in {}: {}", EVERY, away.getMostSpecificCause().getMessage());
        }
    }
}
