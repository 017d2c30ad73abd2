package dev.batchgateway.web;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonRawValue;
import dev.batchgateway.batch.BatchApiException;
import dev.batchgateway.batch.BatchJob;
import dev.batchgateway.batch.LineError;
import dev.batchgateway.batch.StoredFile;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import java.time.Instant;
import java.util.List;
import java.util.OptionalLong;
import java.util.function.Function;

/** The Batch API's objects as OpenAI writes them (File, Batch, lists of them), and what its endpoints share. */
final class BatchApiObjects {

    private BatchApiObjects() {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record FileObject(String id, String object, long bytes, @JsonProperty("created_at") long createdAt,
            @JsonProperty("expires_at") Long expiresAt, String filename, String purpose, String status) {

        static FileObject of(StoredFile file) {
            return new FileObject(file.id(), "file", file.bytes(), file.createdAt().getEpochSecond(), seconds(file.expiresAt()),
                    file.filename(), file.purpose(), "processed");
        }
    }

    record Deleted(String id, String object, boolean deleted) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record ListPage<T>(String object, List<T> data, @JsonProperty("first_id") String firstId,
            @JsonProperty("last_id") String lastId, @JsonProperty("has_more") boolean hasMore) {

        /** A page of {@code limit} from {@code found}, which holds one more when there are more. */
        static <S, T> ListPage<T> of(List<S> found, int limit, Function<S, T> object, Function<T, String> id) {
            List<T> data = found.stream().limit(limit).map(object).toList();
            return new ListPage<>("list", data, data.isEmpty() ? null : id.apply(data.getFirst()),
                    data.isEmpty() ? null : id.apply(data.getLast()), found.size() > limit);
        }
    }

    record Errors(String object, List<ErrorEntry> data) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record ErrorEntry(String code, String message, String param, Integer line) {
        static ErrorEntry of(LineError error) {
            return new ErrorEntry(error.code(), error.message(), error.param(), error.line());
        }
    }

    record RequestCounts(int total, int completed, int failed) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record BatchObject(String id, String object, String endpoint, Errors errors,
            @JsonProperty("input_file_id") String inputFileId,
            @JsonProperty("completion_window") String completionWindow,
            String status,
            @JsonProperty("output_file_id") String outputFileId,
            @JsonProperty("error_file_id") String errorFileId,
            @JsonProperty("created_at") long createdAt,
            @JsonProperty("in_progress_at") Long inProgressAt,
            @JsonProperty("expires_at") Long expiresAt,
            @JsonProperty("finalizing_at") Long finalizingAt,
            @JsonProperty("completed_at") Long completedAt,
            @JsonProperty("failed_at") Long failedAt,
            @JsonProperty("expired_at") Long expiredAt,
            @JsonProperty("cancelling_at") Long cancellingAt,
            @JsonProperty("cancelled_at") Long cancelledAt,
            @JsonProperty("request_counts") RequestCounts requestCounts,
            @JsonRawValue String metadata) {

        static BatchObject of(BatchJob batch) {
            var counts = batch.requestCounts();
            return new BatchObject(batch.id(), "batch", batch.endpoint(),
                    batch.errors().isEmpty() ? null : new Errors("list", batch.errors().stream().map(ErrorEntry::of).toList()),
                    batch.inputFileId(), batch.completionWindow(), batch.status().wireName(), batch.outputFileId(),
                    batch.errorFileId(), batch.createdAt().getEpochSecond(), seconds(batch.inProgressAt()),
                    seconds(batch.expiresAt()), seconds(batch.finalizingAt()), seconds(batch.completedAt()),
                    seconds(batch.failedAt()), seconds(batch.expiredAt()), seconds(batch.cancellingAt()),
                    seconds(batch.cancelledAt()), new RequestCounts(counts.total(), counts.completed(), counts.failed()),
                    batch.metadata());
        }
    }

    private static Long seconds(Instant time) {
        return time == null ? null : time.getEpochSecond();
    }

    /** The user whose files and batches the caller's are: its key's. */
    static long owner(Callers callers, Caller who) {
        callers.requireKnown(who);
        return callers.billedUser(who, OptionalLong.empty()).orElseThrow(() -> new BatchApiException.Invalid(null,
                "the Batch API needs a user's API key: files and batches belong to the key's user"));
    }

    /** A list's {@code limit}: a whole number from 1 to {@code most}, {@code byDefault} when absent. */
    static int limit(String limit, int byDefault, int most) {
        if (limit == null) {
            return byDefault;
        }
        try {
            int value = Integer.parseInt(limit);
            if (value >= 1 && value <= most) {
                return value;
            }
        } catch (NumberFormatException notANumber) {
            // refused below
        }
        throw new BatchApiException.Invalid("limit", "limit must be a whole number from 1 to " + most + ", was " + limit);
    }
}
