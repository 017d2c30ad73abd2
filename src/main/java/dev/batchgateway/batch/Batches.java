package dev.batchgateway.batch;

import java.time.Duration;
import java.util.List;
import java.util.UUID;

/**
 * The batches of the Batch API as their owners see them: created on an input file of the owner's, read and listed by
 * their owner only (or the operator), cancelled while they run. The instances' {@link BatchRunner}s do the work.
 */
public final class Batches {

    /** The one completion window OpenAI offers, and the gateway with it. */
    public static final String WINDOW = "24h";

    private final BatchStore store;
    private final FileStore files;
    private final LineFormat format;
    private final BatchRunner runner;

    /** @param runner this instance's runner, told of new batches and of cancels at once */
    public Batches(BatchStore store, FileStore files, LineFormat format, BatchRunner runner) {
        this.store = store;
        this.files = files;
        this.format = format;
        this.runner = runner;
    }

    /**
     * A new batch of the user's input file, {@code validating}; its lines are requests of the key it is created with
     * ({@code keyId}): under its limits, for its models, while it is valid.
     */
    public BatchJob create(long user, UUID keyId, String inputFileId, String endpoint, String completionWindow, String metadata) {
        if (inputFileId == null) {
            throw new BatchApiException.Invalid("input_file_id", "input_file_id is required");
        }
        if (endpoint == null || !format.endpoints().contains(endpoint)) {
            throw new BatchApiException.Invalid("endpoint", "endpoint must be one of " + format.endpoints() + ", was " + endpoint);
        }
        if (!WINDOW.equals(completionWindow)) {
            throw new BatchApiException.Invalid("completion_window", "completion_window must be \"" + WINDOW + "\", was " + completionWindow);
        }
        StoredFile input = files.find(user, inputFileId)
                .orElseThrow(() -> new BatchApiException.NotFound("No such File object: " + inputFileId));
        if (!StoredFile.UPLOAD.equals(input.purpose())) {
            throw new BatchApiException.Invalid("input_file_id", "the input file must have been uploaded with purpose \"batch\"");
        }
        String id = "batch_" + UUID.randomUUID().toString().replace("-", "");
        BatchJob created = store.create(id, user, keyId, endpoint, inputFileId, WINDOW, metadata, Duration.ofHours(24));
        runner.wake();
        return created;
    }

    /** The user's batch; 404 when it is not theirs. */
    public BatchJob find(long user, String id) {
        return store.find(user, id).orElseThrow(() -> notFound(id));
    }

    public List<BatchJob> list(long user, int limit, String after) {
        return store.list(user, limit, after);
    }

    /** Every user's batches, for the operator. */
    public List<BatchJob> listAll(int limit, String after) {
        return store.list(null, limit, after);
    }

    /**
     * Cancels the user's batch: no line not yet sent is sent any more, lines in flight finish; the batch is {@code
     * cancelling} until they have, then {@code cancelled}. 409 for a batch that is finalizing (its lines have all ended:
     * it completes) or has ended.
     */
    public BatchJob cancel(long user, String id) {
        BatchJob batch = store.cancel(user, id).orElseThrow(() -> notFound(id));
        if (batch.status() != BatchStatus.CANCELLING && batch.status() != BatchStatus.CANCELLED) {
            throw new BatchApiException.Conflict("Cannot cancel a batch with status '" + batch.status().wireName() + "'.");
        }
        runner.cancelled(batch.id()); // other instances learn of it on their next sweep, within a second
        runner.wake();
        return batch;
    }

    private static BatchApiException.NotFound notFound(String id) {
        return new BatchApiException.NotFound("No batch found with id '" + id + "'.");
    }
}
