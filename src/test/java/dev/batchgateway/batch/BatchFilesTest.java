package dev.batchgateway.batch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.IntSupplier;
import org.junit.jupiter.api.Test;

/** Uploads are held to OpenAI's limits as they stream in, and nothing of a refused one is kept. */
class BatchFilesTest {

    private final MemoryFileStore store = new MemoryFileStore();
    private final BatchFiles files = new BatchFiles(store, null);

    @Test
    void aFileOfFiftyThousandLinesIsKeptWithItsCounts() throws IOException {
        // Given 50,000 lines, the last without a line end, and blank lines between that are not counted
        String content = "{}\n\n".repeat(49_999) + "{}";

        // When it is uploaded
        StoredFile file = files.upload(7, "in.jsonl", "batch", stream(content));

        // Then it is kept whole, with its size and lines
        assertThat(file.lines()).isEqualTo(50_000);
        assertThat(file.bytes()).isEqualTo(content.length());
        assertThat(store.saved).singleElement().isEqualTo(content);
    }

    @Test
    void aFileOfOneLineMoreIsRefusedNamingTheLimitAndNothingIsKept() {
        String content = "{}\n".repeat(50_001);

        assertThatThrownBy(() -> files.upload(7, "in.jsonl", "batch", stream(content)))
                .isInstanceOf(BatchApiException.Invalid.class)
                .hasMessageContaining("50000 lines")
                .satisfies(refused -> assertThat(((BatchApiException) refused).param()).isEqualTo("file"));
        assertThat(store.saved).isEmpty();
    }

    @Test
    void aFileOverTwoHundredMegabytesIsRefusedNamingTheLimitWithoutBeingHeld() {
        // Given a stream of 200 MB and a byte, generated as it is read (never held whole, here either)
        InputStream huge = new InputStream() {
            private long left = BatchFiles.MAX_BYTES + 1;

            @Override
            public int read() {
                return left-- > 0 ? 'x' : -1;
            }

            @Override
            public int read(byte[] buffer, int offset, int length) {
                if (left <= 0) {
                    return -1;
                }
                int n = (int) Math.min(length, left);
                java.util.Arrays.fill(buffer, offset, offset + n, (byte) 'x');
                left -= n;
                return n;
            }
        };

        assertThatThrownBy(() -> files.upload(7, "in.jsonl", "batch", huge))
                .isInstanceOf(BatchApiException.Invalid.class)
                .hasMessageContaining("200 MB");
        assertThat(store.saved).isEmpty();
    }

    @Test
    void anotherPurposeIsRefusedNamingIt() {
        assertThatThrownBy(() -> files.upload(7, "in.jsonl", "fine-tune", stream("{}")))
                .isInstanceOf(BatchApiException.Invalid.class)
                .hasMessageContaining("purpose")
                .satisfies(refused -> assertThat(((BatchApiException) refused).param()).isEqualTo("purpose"));
    }

    private static InputStream stream(String content) {
        return new java.io.ByteArrayInputStream(content.getBytes(StandardCharsets.UTF_8));
    }

    /** Keeps what it reads to the end, as the JDBC store does in one transaction: a stream that throws keeps nothing. */
    private static final class MemoryFileStore implements FileStore {
        final List<String> saved = new ArrayList<>();

        @Override
        public StoredFile save(long user, String filename, String purpose, InputStream content, IntSupplier lines, Instant expiresAt)
                throws IOException {
            var bytes = new ByteArrayOutputStream();
            content.transferTo(new OutputStream() {
                private long size;

                @Override
                public void write(int b) {
                    throw new UnsupportedOperationException();
                }

                @Override
                public void write(byte[] buffer, int offset, int length) {
                    size += length;
                    if (size <= 16 * 1024 * 1024) { // keeps small files only: this double must not hold 200 MB either
                        bytes.write(buffer, offset, length);
                    }
                }
            });
            saved.add(bytes.toString(StandardCharsets.UTF_8));
            return new StoredFile("file-1", user, filename, purpose, bytes.size(), lines.getAsInt(), Instant.EPOCH, expiresAt);
        }

        @Override
        public Optional<StoredFile> find(long user, String id) {
            return Optional.empty();
        }

        @Override
        public List<StoredFile> list(long user, int limit, String after) {
            return List.of();
        }

        @Override
        public void copy(String id, OutputStream out) {}

        @Override
        public void eachLine(String id, Consumer<String> line) {}

        @Override
        public boolean delete(long user, String id) {
            return false;
        }

        @Override
        public int deleteExpired(Instant now) {
            return 0;
        }
    }
}
