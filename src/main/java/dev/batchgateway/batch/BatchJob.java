package dev.batchgateway.batch;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * A batch of the Batch API as its owner sees it: OpenAI's Batch object, field for field. (Not a batch of the scheduler,
 * which is a worker call of a few prompts: a batch job's lines become many of those.)
 *
 * @param metadata the owner's metadata as a JSON object's text, or null
 * @param errors why validation refused it; empty otherwise
 */
public record BatchJob(String id, long user, String endpoint, String inputFileId, String completionWindow, String metadata,
        BatchStatus status, List<LineError> errors, String outputFileId, String errorFileId, Instant createdAt,
        Instant inProgressAt, Instant expiresAt, Instant finalizingAt, Instant completedAt, Instant failedAt,
        Instant expiredAt, Instant cancellingAt, Instant cancelledAt, RequestCounts requestCounts) {

    public BatchJob {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(status, "status");
        Objects.requireNonNull(requestCounts, "requestCounts");
        errors = List.copyOf(errors);
    }

    /** How many lines the batch has, and how many of them succeeded and failed so far. */
    public record RequestCounts(int total, int completed, int failed) {}
}
