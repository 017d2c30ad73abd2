package dev.batchgateway.batch;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/** Where the Batch API's files live: their bytes in order, written and read a chunk at a time, never whole. */
public interface FileStore {

    /**
     * Stores a file read from {@code content} to its end, all of it or nothing: a stream that throws (a limit) leaves
     * no file.
     *
     * @param lines how many lines the content held, asked once the content has been read
     */
    StoredFile save(long user, String filename, String purpose, InputStream content, java.util.function.IntSupplier lines,
            Instant expiresAt) throws IOException;

    /** The user's file, or empty when there is none of theirs by that id. */
    Optional<StoredFile> find(long user, String id);

    /** The user's files, newest first, after the one named {@code after} (null for the newest). */
    List<StoredFile> list(long user, int limit, String after);

    /** Writes the file's bytes to {@code out}, in order. */
    void copy(String id, OutputStream out) throws IOException;

    /** Gives each line of the file, in order, without the line end. */
    void eachLine(String id, Consumer<String> line);

    /** Deletes the user's file; false when there is none of theirs by that id. */
    boolean delete(long user, String id);

    /** Deletes the files whose retention ended before {@code now}; how many. */
    int deleteExpired(Instant now);
}
