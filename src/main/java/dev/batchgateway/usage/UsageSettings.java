package dev.batchgateway.usage;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * Usage accounting's settings, bound from {@code gateway.usage.*} ({@code GATEWAY_USAGE_…}).
 *
 * @param bufferCapacity usage rows waiting for the database at which completions get 503
 * @param retention how long usage rows are kept, whole months at a time (their totals stay in the daily rollups);
 *     null keeps them forever
 * @param journalDir where each instance keeps, in a directory of its own, the usage rows written while the
 *     database is away; a dead instance's directory is replayed by the next instance started with the same one
 * @param journalMaxSize the most an instance's journal holds; when it is full, completions get 503
 * @param writeTimeout how long a usage write waits for PostgreSQL before its rows go to the journal (default 2s)
 * @param rowsPerWrite the most rows in one write, one round trip for many batches (default 1000)
 * @param firstBackOff the wait after a first failed write, doubled after each further one (default 100ms)
 * @param maxBackOff the longest wait between two writes while the database is away (default 5s)
 */
@ConfigurationProperties("gateway.usage")
public record UsageSettings(
        int bufferCapacity,
        Duration retention,
        String journalDir,
        DataSize journalMaxSize,
        Duration writeTimeout,
        Integer rowsPerWrite,
        Duration firstBackOff,
        Duration maxBackOff) {

    private static final DataSize MIN_JOURNAL_SIZE = DataSize.ofKilobytes(1);

    public UsageSettings {
        require(bufferCapacity >= 1, "GATEWAY_USAGE_BUFFER_CAPACITY must be at least 1, was " + bufferCapacity);
        require(retention == null || retention.compareTo(Duration.ofDays(1)) >= 0,
                "GATEWAY_USAGE_RETENTION must be at least 1d (e.g. 400d), or empty to keep usage rows forever, was " + retention);
        require(journalDir != null && !journalDir.isBlank(),
                "GATEWAY_USAGE_JOURNAL_DIR must name a directory the gateway can write (e.g. /var/lib/batch-gateway/usage-journal)");
        require(journalMaxSize != null && journalMaxSize.toBytes() >= MIN_JOURNAL_SIZE.toBytes(),
                "GATEWAY_USAGE_JOURNAL_MAX_SIZE must be at least 1KB (e.g. 256MB), was " + journalMaxSize);
        writeTimeout = writeTimeout == null ? Duration.ofSeconds(2) : writeTimeout;
        rowsPerWrite = rowsPerWrite == null ? 1000 : rowsPerWrite;
        firstBackOff = firstBackOff == null ? Duration.ofMillis(100) : firstBackOff;
        maxBackOff = maxBackOff == null ? Duration.ofSeconds(5) : maxBackOff;
        requirePositive(writeTimeout, "GATEWAY_USAGE_WRITE_TIMEOUT");
        require(rowsPerWrite >= 1, "GATEWAY_USAGE_ROWS_PER_WRITE must be at least 1, was " + rowsPerWrite);
        requirePositive(firstBackOff, "GATEWAY_USAGE_FIRST_BACK_OFF");
        require(maxBackOff.compareTo(firstBackOff) >= 0,
                "GATEWAY_USAGE_MAX_BACK_OFF must be at least GATEWAY_USAGE_FIRST_BACK_OFF (" + firstBackOff + "), was " + maxBackOff);
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new InvalidConfigurationException(message);
        }
    }

    private static void requirePositive(Duration duration, String variable) {
        require(duration != null && duration.isPositive(), variable + " must be a positive duration (e.g. 2s), was " + duration);
    }
}
