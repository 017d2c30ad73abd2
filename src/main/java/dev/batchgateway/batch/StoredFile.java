package dev.batchgateway.batch;

import java.time.Instant;
import java.util.Objects;

/**
 * A file of the Batch API: an upload ({@code purpose} {@code batch}, kept until deleted) or a batch's output or error
 * file ({@code batch_output}, kept until {@code expiresAt}).
 *
 * @param expiresAt null for a file kept until deleted
 */
public record StoredFile(String id, long user, String filename, String purpose, long bytes, int lines, Instant createdAt,
        Instant expiresAt) {

    public static final String UPLOAD = "batch";
    public static final String OUTPUT = "batch_output";

    public StoredFile {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(filename, "filename");
        Objects.requireNonNull(purpose, "purpose");
        Objects.requireNonNull(createdAt, "createdAt");
    }
}
