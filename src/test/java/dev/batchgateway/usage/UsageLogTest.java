package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageWriteException;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/** Rows that are lost to the table are in the log with everything needed to insert them by hand. */
@ExtendWith(OutputCaptureExtension.class)
class UsageLogTest {

    private final UsageLog log = new UsageLog();
    private final UsageRecord row = new UsageRecord(UUID.randomUUID(), 42, new TokenUsage(5, 7), "llama",
            Instant.parse("2026-11-22T10:15:30.123456Z"));

    @Test
    void unwrittenRowsAreLoggedOneLineEach(CapturedOutput output) {
        log.unwritten(List.of(row, row));

        assertThat(output.getAll())
                .contains("2 usage rows could not be written")
                .contains("unwritten usage row: request_id=" + row.requestId() + " user_id=42 prompt_tokens=5"
                        + " completion_tokens=7 model=llama served_at=2026-11-22T10:15:30.123456Z");
        assertThat(output.getAll().lines().filter(line -> line.contains("unwritten usage row: "))).hasSize(2);
    }

    @Test
    void refusedRowsAreLoggedWithTheReason(CapturedOutput output) {
        log.rejected(List.of(row), new UsageWriteException.Permanent("violates check constraint", null));

        assertThat(output.getAll())
                .contains("usage row refused for good and dropped (violates check constraint): request_id="
                        + row.requestId() + " user_id=42");
    }

    @Test
    void aFailedWriteIsLoggedAsRetriedOrAsASearchForTheRefusedRows(CapturedOutput output) {
        log.writeFailed(new UsageWriteException.Recoverable("connection refused", null));
        log.writeFailed(new UsageWriteException.Permanent("violates check constraint", null));

        assertThat(output.getAll())
                .contains("writing usage rows failed, keeping them and retrying with back-off: connection refused")
                .contains("the usage store refused a write, looking for the refused rows: violates check constraint");
    }

    @Test
    void anUnwrittenRowNamesWhatBecameOfIt(CapturedOutput output) {
        log.unwritten(List.of(new UsageRecord(UUID.randomUUID(), 42, new TokenUsage(5, 7), "llama",
                Instant.parse("2026-11-22T10:15:30Z"), dev.batchgateway.completion.UsageOutcome.CLIENT_GONE,
                dev.batchgateway.completion.ServiceTier.FLEX)));

        assertThat(output.getAll()).contains("served_at=2026-11-22T10:15:30Z outcome=client_gone service_tier=flex");
    }
}
