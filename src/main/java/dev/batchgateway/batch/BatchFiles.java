package dev.batchgateway.batch;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;

/**
 * The Batch API's files as their owners see them: uploads checked against OpenAI's limits while they stream in, each
 * user's own files only (another's are not found, so their existence is not revealed), and no input file deleted while
 * a batch still reads it.
 */
public final class BatchFiles {

    /** OpenAI's limits on a batch's input file. */
    public static final int MAX_LINES = 50_000;
    public static final long MAX_BYTES = 200L * 1024 * 1024;

    private final FileStore files;
    private final BatchStore batches;

    public BatchFiles(FileStore files, BatchStore batches) {
        this.files = files;
        this.batches = batches;
    }

    /** Stores an upload read to its end, or refuses it (400 naming the limit) as soon as it goes over one. */
    public StoredFile upload(long user, String filename, String purpose, InputStream content) throws IOException {
        if (!StoredFile.UPLOAD.equals(purpose)) {
            throw new BatchApiException.Invalid("purpose",
                    "purpose must be \"batch\": this gateway keeps files for the Batch API only, was \"" + purpose + "\"");
        }
        var limited = new LimitedUpload(content);
        return files.save(user, filename == null || filename.isBlank() ? "upload.jsonl" : filename, StoredFile.UPLOAD, limited,
                limited::lines, null);
    }

    public StoredFile find(long user, String id) {
        return files.find(user, id).orElseThrow(() -> notFound(id));
    }

    public List<StoredFile> list(long user, int limit, String after) {
        return files.list(user, limit, after);
    }

    /** Writes the user's file's bytes to {@code out}; 404 when it is not theirs. */
    public void copy(long user, String id, OutputStream out) throws IOException {
        find(user, id);
        files.copy(id, out);
    }

    /** Deletes the user's file; 409 while a batch still reads it. */
    public void delete(long user, String id) {
        find(user, id);
        if (batches.inUse(id)) {
            throw new BatchApiException.Conflict("File " + id + " is the input of a batch that is still running: cancel the batch or wait for it to end");
        }
        if (!files.delete(user, id)) {
            throw notFound(id);
        }
    }

    private static BatchApiException.NotFound notFound(String id) {
        return new BatchApiException.NotFound("No such File object: " + id);
    }

    /** Counts bytes and lines as they pass, and refuses the rest once either is over its limit. */
    private static final class LimitedUpload extends FilterInputStream {
        private long bytes;
        private int lines;
        private boolean atLineStart = true;

        LimitedUpload(InputStream in) {
            super(in);
        }

        int lines() {
            return lines;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) {
                count(new byte[] {(byte) b}, 0, 1);
            }
            return b;
        }

        @Override
        public int read(byte[] buffer, int offset, int length) throws IOException {
            int read = super.read(buffer, offset, length);
            if (read > 0) {
                count(buffer, offset, read);
            }
            return read;
        }

        private void count(byte[] buffer, int offset, int length) {
            bytes += length;
            if (bytes > MAX_BYTES) {
                throw new BatchApiException.Invalid("file", "the file is larger than 200 MB (" + MAX_BYTES
                        + " bytes), the most a batch's input file may hold");
            }
            for (int i = offset; i < offset + length; i++) {
                boolean lineEnd = buffer[i] == '\n';
                if (atLineStart && !lineEnd && buffer[i] != '\r') {
                    lines++;
                    atLineStart = false;
                    if (lines > MAX_LINES) {
                        throw new BatchApiException.Invalid("file", "the file holds more than " + MAX_LINES
                                + " lines, the most a batch's input file may hold");
                    }
                }
                if (lineEnd) {
                    atLineStart = true;
                }
            }
        }
    }
}
