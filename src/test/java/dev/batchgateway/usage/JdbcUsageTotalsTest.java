package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.UsageOutcome;
import dev.batchgateway.completion.UsageRecord;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.jdbc.test.autoconfigure.AutoConfigureTestDatabase;
import org.springframework.boot.jdbc.test.autoconfigure.JdbcTest;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Propagation;
import org.springframework.transaction.annotation.Transactional;

/** Totals from daily rollups plus the rows of part days equal the sums over the rows, for any window. */
@Tag(TestDatabase.TAG)
@JdbcTest
@AutoConfigureTestDatabase(replace = AutoConfigureTestDatabase.Replace.NONE)
@Transactional(propagation = Propagation.NOT_SUPPORTED)
@Import({JdbcUsageRepository.class, JdbcUsageTotals.class})
@EnableConfigurationProperties(UsageSettings.class)
class JdbcUsageTotalsTest {

    @DynamicPropertySource
    static void database(DynamicPropertyRegistry registry) {
        TestDatabase.register(registry);
    }

    @Autowired
    JdbcUsageRepository repository;

    @Autowired
    JdbcUsageTotals totals;

    @Autowired
    JdbcClient jdbc;

    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);

    @Test
    void everyWindowsTotalsAreTheSumsOfItsRows() {
        // Given 2,000 rows of one user over five days and two months (rows on midnights, to the microsecond)
        var random = ThreadLocalRandom.current();
        Instant start = Instant.parse("2026-09-28T00:00:00Z");
        var outcomes = UsageOutcome.values();
        var rows = new ArrayList<>(IntStream.range(0, 2000).mapToObj(i -> new UsageRecord(UUID.randomUUID(), user,
                        new TokenUsage(random.nextInt(0, 100), random.nextInt(0, 100)), "m" + i % 2,
                        start.plus(random.nextLong(0, 5 * 86_400_000_000L), ChronoUnit.MICROS), outcomes[i % outcomes.length],
                        ServiceTier.values()[i / outcomes.length % 2]))
                .toList());
        for (int day = 0; day <= 5; day++) {
            rows.add(new UsageRecord(UUID.randomUUID(), user, new TokenUsage(1, 2), "m0", start.plus(day, ChronoUnit.DAYS)));
        }
        repository.record(rows);

        // When totals are asked for windows: open on either side or both, on midnights, inside one day, across
        // midnights, a microsecond wide, with nanoseconds, and random ones
        var windows = new ArrayList<Instant[]>(List.of(
                new Instant[] {null, null},
                new Instant[] {start, null},
                new Instant[] {null, start.plus(3, ChronoUnit.DAYS)},
                new Instant[] {start.plus(1, ChronoUnit.DAYS), start.plus(3, ChronoUnit.DAYS)},
                new Instant[] {start.plusSeconds(3600), start.plusSeconds(7200)},
                new Instant[] {start.plus(1, ChronoUnit.DAYS).minusNanos(1), start.plus(1, ChronoUnit.DAYS).plusNanos(1)},
                new Instant[] {start.plusSeconds(86_399), start.plus(4, ChronoUnit.DAYS).plusSeconds(1)},
                new Instant[] {start.plus(2, ChronoUnit.DAYS), start.plus(2, ChronoUnit.DAYS).plus(1, ChronoUnit.MICROS)}));
        for (int i = 0; i < 40; i++) {
            Instant a = start.minusSeconds(86_400).plusNanos(random.nextLong(0, 7 * 86_400_000_000_000L));
            Instant b = start.minusSeconds(86_400).plusNanos(random.nextLong(0, 7 * 86_400_000_000_000L));
            windows.add(a.isBefore(b) ? new Instant[] {a, b} : new Instant[] {b, a});
        }

        // Then each equals the sums over the rows in it, by outcome, and the table holds exactly those rows
        assertThat(jdbc.sql("SELECT count(*) FROM token_usage WHERE user_id = ?").param(user).query(Long.class).single())
                .isEqualTo(rows.size());
        for (Instant[] window : windows) {
            assertThat(totals.totals(user, window[0], window[1]))
                    .as("from %s to %s", window[0], window[1])
                    .isEqualTo(sumOfRows(rows, window[0], window[1]));
        }
    }

    /** The reference, computed from the rows as recorded, with exact instants: independent of any SQL. */
    private UsageTotals sumOfRows(List<UsageRecord> rows, Instant from, Instant to) {
        var sums = new java.util.HashMap<UsageTotals.Split, UsageTotals.Sum>();
        for (UsageRecord row : rows) {
            if ((from == null || !row.servedAt().isBefore(from)) && (to == null || row.servedAt().isBefore(to))) {
                var usage = row.usage();
                sums.merge(new UsageTotals.Split(row.outcome().word(), row.serviceTier().wireName()),
                        new UsageTotals.Sum(1, usage.promptTokens(), usage.completionTokens(), usage.totalTokens()),
                        UsageTotals.Sum::plus);
            }
        }
        return UsageTotals.of(user, sums);
    }
}
