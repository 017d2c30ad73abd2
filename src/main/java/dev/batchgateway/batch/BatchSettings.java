package dev.batchgateway.batch;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.time.Duration;

/**
 * The Batch API's settings, bound from {@code gateway.batch-api.*}: {@code GATEWAY_BATCH_LEASE}, how long an instance's
 * claim on lines (or on a batch it validates or finishes) lasts unless renewed, so that another takes them over within
 * it after the instance died; {@code GATEWAY_BATCH_FILE_RETENTION}, how long output and error files are kept; {@code
 * GATEWAY_BATCH_LINES_IN_FLIGHT}, how many lines one instance has queued with the scheduler at once.
 */
public record BatchSettings(Duration lease, Duration fileRetention, int linesInFlight) {

    public BatchSettings {
        lease = lease == null ? Duration.ofSeconds(30) : lease;
        fileRetention = fileRetention == null ? Duration.ofDays(30) : fileRetention;
        linesInFlight = linesInFlight == 0 ? 512 : linesInFlight;
        require(lease.compareTo(Duration.ofSeconds(1)) >= 0, "GATEWAY_BATCH_LEASE must be at least 1s, was " + lease);
        require(fileRetention.isPositive(), "GATEWAY_BATCH_FILE_RETENTION must be a positive duration (e.g. 30d), was " + fileRetention);
        require(linesInFlight >= 1, "GATEWAY_BATCH_LINES_IN_FLIGHT must be at least 1, was " + linesInFlight);
    }

    private static void require(boolean valid, String message) {
        if (!valid) {
            throw new InvalidConfigurationException(message);
        }
    }
}
