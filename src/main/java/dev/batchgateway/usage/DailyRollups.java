package dev.batchgateway.usage;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
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
 * Instances may all run it: each day is rolled up once. {@code gateway.usage.rollup.days.behind} says how many days
 * that have ended are not rolled up yet (0, or 1 in the minutes after midnight): more means the roll-up fails, and
 * retention drops nothing meanwhile.
 */
@Component
class DailyRollups implements MeterBinder {

    private static final Logger LOG = LoggerFactory.getLogger(DailyRollups.class);
    private static final Duration EVERY = Duration.ofMinutes(5);

    private final JdbcClient jdbc;
    private final AtomicLong daysBehind = new AtomicLong();
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

    @Override
    public void bindTo(MeterRegistry registry) {
        Gauge.builder("gateway.usage.rollup.days.behind", daysBehind, AtomicLong::get)
                .description("days that have ended whose usage is not rolled up yet (usage_daily), as of the last roll-up")
                .register(registry);
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

    /** The days before today (UTC, by the database's clock) that are not rolled up. */
    long daysBehind() {
        return jdbc.sql("SELECT (now() AT TIME ZONE 'UTC')::date - rolled_up_before FROM usage_rollup").query(Long.class).single();
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
        try {
            daysBehind.set(daysBehind());
        } catch (DataAccessException away) {
            // the gauge keeps its last value; a database that is away has alerts of its own
        }
    }
}
