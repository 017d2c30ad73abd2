package dev.batchgateway.usage;

import dev.batchgateway.completion.UsageEvents;
import dev.batchgateway.completion.UsageJournalException;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageWriteException;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Component;

/**
 * The usage ledger's reports in the application's log. Rows that are dropped or left unwritten are logged one line
 * each with everything needed to insert them by hand ({@code unwritten usage row: request_id=… user_id=…}); inserting
 * a row that did reach the table after all is harmless, its request id is skipped.
 *
 * <p>SLF4J, not the JDK's logging: the JDK resets its logging in a shutdown hook of its own, concurrently with the
 * application's shutdown, and the rows left unwritten at shutdown would not be logged.
 */
@Component
class UsageLog implements UsageEvents {

    private static final Logger LOG = LoggerFactory.getLogger(UsageLog.class);

    @Override
    public void writeFailed(UsageWriteException failure) {
        switch (failure) {
            case UsageWriteException.Recoverable away ->
                    LOG.warn("writing usage rows failed, keeping them and retrying with back-off: {}", away.getMessage());
            case UsageWriteException.Permanent refused ->
                    LOG.warn("the usage store refused a write, looking for the refused rows: {}", refused.getMessage());
        }
        LOG.debug("usage write failure", failure);
    }

    @Override
    public void journalFailed(UsageJournalException failure) {
        LOG.error("the usage journal refused rows, callers get 503 until the store or the journal takes them: {}",
                failure.getMessage());
        LOG.debug("usage journal failure", failure);
    }

    @Override
    public void rejected(List<UsageRecord> rows, UsageWriteException.Permanent refusal) {
        for (UsageRecord row : rows) {
            LOG.error("usage row refused for good and dropped ({}): {}", refusal.getMessage(), describe(row));
        }
    }

    @Override
    public void unwritten(List<UsageRecord> rows) {
        LOG.error("{} usage rows could not be written; each follows as an 'unwritten usage row' line", rows.size());
        for (UsageRecord row : rows) {
            LOG.error("unwritten usage row: {}", describe(row));
        }
    }

    @Override
    public void unaccounted(List<UsageRecord> rows, boolean inDoubt, boolean firstOfOutage) {
        if (firstOfOutage) {
            LOG.warn("usage of users with token limits cannot be accounted against a live budget hold (the database is out "
                    + "of reach or this instance's hold expired): their answers get 503 and nothing is billed until it "
                    + "can; counted in gateway_usage_rows_unaccounted_total, logged once until usage is written again");
        }
    }

    private static String describe(UsageRecord row) {
        return "request_id=" + row.requestId()
                + " user_id=" + row.userId()
                + " prompt_tokens=" + row.usage().promptTokens()
                + " completion_tokens=" + row.usage().completionTokens()
                + " model=" + row.model()
                + " served_at=" + row.servedAt()
                + " outcome=" + row.outcome().word()
                + " service_tier=" + row.serviceTier().wireName();
    }
}
