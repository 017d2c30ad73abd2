package dev.batchgateway.batch;

import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;

/**
 * Where batches and their lines live, shared by every instance: lines are claimed for a lease, and a line whose lease
 * ended (its instance died) is claimed again by another. Leases are the store's clock's, so instances need not agree on
 * the time.
 */
public interface BatchStore {

    /** A new batch, {@code validating}, created with the user's key {@code keyId}, whose request its lines are. */
    BatchJob create(String id, long user, UUID keyId, String endpoint, String inputFileId, String completionWindow,
            String metadata, Duration window);

    /** The user's batch (any user's when {@code user} is null), or empty. */
    Optional<BatchJob> find(Long user, String id);

    /** The user's batches (every user's when {@code user} is null), newest first, after the one named {@code after}. */
    List<BatchJob> list(Long user, int limit, String after);

    /** Whether a batch that has not ended reads this file. */
    boolean inUse(String fileId);

    /**
     * Cancels the user's batch: {@code validating} or {@code in_progress} become {@code cancelling}; other statuses
     * stay. Empty when there is no such batch of the user's.
     */
    Optional<BatchJob> cancel(long user, String id);

    /** A batch to validate, leased to {@code instance}: one nobody validates, or whose validator's lease ended. */
    Optional<ToValidate> claimValidation(UUID instance, Duration lease);

    /** Whether any batch, of any instance, is not yet ended: validating, in progress, finalizing or cancelling. */
    boolean anyUnfinished();

    /** A batch to validate: whose it is, its endpoint and its input file. */
    record ToValidate(String batchId, long user, String endpoint, String inputFileId) {}

    /** Forgets the lines a validator that died had added. */
    void clearLines(String batchId);

    /** Adds validated lines to the batch, still {@code validating}. */
    void addLines(String batchId, List<NewLine> lines);

    /** A line as validation found it. */
    record NewLine(int line, String customId, String url, String body) {}

    /** {@code validating} → {@code in_progress} with {@code total} lines, if it is still validating. */
    void start(String batchId, int total);

    /** {@code validating} → {@code failed}, with validation's errors. */
    void fail(String batchId, List<LineError> errors);

    /**
     * Claims up to {@code most} queued lines of running batches not waiting for a limit, leased to {@code instance}:
     * lines no one holds and lines whose lease ended. A line's request id is fixed at its first claim.
     */
    List<ClaimedLine> claim(UUID instance, int most, Duration lease);

    /** A line to run, for its batch's owner, as a request of the key the batch was created with (null: none recorded). */
    record ClaimedLine(String batchId, int line, long user, UUID keyId, String customId, String url, String body,
            UUID requestId) {}

    /** Keeps the instance's leases on the given lines alive for another {@code lease}. */
    void renew(UUID instance, Collection<LineRef> lines, Duration lease);

    /** Which of these batches are being cancelled (by any instance): their lines not yet sent are not sent. */
    Set<String> cancelling(Collection<String> batchIds);

    /** One line of one batch. */
    record LineRef(String batchId, int line) {}

    /** Gives lines back unrun: the batch waits until {@code notBefore} (its user over a limit) before any is claimed. */
    void putBack(List<LineRef> lines, String batchId, Instant notBefore);

    /**
     * Records how lines ended: each ends once, by its first result (a line run twice after its lease ended keeps the
     * first); a line that already ended is left as it is.
     */
    void finish(List<Finished> lines);

    /** A line's end: done (its output line) or failed (its error line). */
    record Finished(String batchId, int line, boolean succeeded, String result) {}

    /**
     * Ends what is due, each batch in one transaction that writes its output and error files: running batches with no
     * line left become finalizing (committed on its own, so it is seen), then completed, by this call or any instance's
     * next; past their window (their unclaimed lines expire; expired once no line is in flight), cancelling ones with no
     * line in flight (cancelled).
     *
     * @param retention how long the output and error files are kept
     * @return the batches ended
     */
    int finishDue(UUID instance, Duration lease, Duration retention);

    /** How many batches are in each status, and lines in each state, for the metrics. */
    Census census();

    /** Batches by status and lines by state across the cluster. */
    record Census(java.util.Map<BatchStatus, Long> batches, long linesQueued, long linesInFlight, long linesDone,
            long linesFailed) {}
}
