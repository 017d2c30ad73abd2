package dev.batchgateway.batchstore;

import dev.batchgateway.batch.FileStore;
import dev.batchgateway.batch.StoredFile;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.function.IntSupplier;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The Batch API's files in PostgreSQL: a row per file and its bytes in chunks of {@value #CHUNK_BYTES} bytes
 * ({@code batch_file_chunk}), written and read one chunk at a time, so a 200 MB file is never held whole.
 */
@Repository
class JdbcFileStore implements FileStore {

    static final int CHUNK_BYTES = 1024 * 1024;

    private final JdbcClient jdbc;
    private final TransactionTemplate transactions;

    JdbcFileStore(JdbcClient jdbc, TransactionTemplate transactions) {
        this.jdbc = jdbc;
        this.transactions = transactions;
    }

    @Override
    public StoredFile save(long user, String filename, String purpose, InputStream content, IntSupplier lines, Instant expiresAt)
            throws IOException {
        String id = "file-" + UUID.randomUUID().toString().replace("-", "");
        try {
            return transactions.execute(status -> {
                jdbc.sql("""
                        INSERT INTO batch_file (id, user_id, filename, purpose, bytes, lines, expires_at)
                        VALUES (?, ?, ?, ?, 0, 0, ?)
                        """).params(id, user, filename, purpose, expiresAt == null ? null : Timestamp.from(expiresAt)).update();
                long bytes = 0;
                byte[] chunk = new byte[CHUNK_BYTES];
                try {
                    for (int seq = 0; ; seq++) {
                        int filled = content.readNBytes(chunk, 0, CHUNK_BYTES);
                        if (filled == 0) {
                            break;
                        }
                        bytes += filled;
                        jdbc.sql("INSERT INTO batch_file_chunk (file_id, seq, data) VALUES (?, ?, ?)")
                                .params(id, seq, filled == CHUNK_BYTES ? chunk : java.util.Arrays.copyOf(chunk, filled)).update();
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                jdbc.sql("UPDATE batch_file SET bytes = ?, lines = ? WHERE id = ?").params(bytes, lines.getAsInt(), id).update();
                return find(user, id).orElseThrow();
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    @Override
    public Optional<StoredFile> find(long user, String id) {
        return jdbc.sql("SELECT * FROM batch_file WHERE id = ? AND user_id = ?").params(id, user).query(JdbcFileStore::file).optional();
    }

    @Override
    public List<StoredFile> list(long user, int limit, String after) {
        return jdbc.sql("""
                SELECT * FROM batch_file
                WHERE user_id = :user
                  AND (CAST(:after AS text) IS NULL
                       OR (created_at, id) < (SELECT created_at, id FROM batch_file WHERE id = :after AND user_id = :user))
                ORDER BY created_at DESC, id DESC
                LIMIT :limit
                """).param("user", user).param("after", after).param("limit", limit).query(JdbcFileStore::file).list();
    }

    @Override
    public void copy(String id, OutputStream out) throws IOException {
        for (int seq = 0; ; seq++) {
            Optional<byte[]> chunk = chunk(id, seq);
            if (chunk.isEmpty()) {
                return;
            }
            out.write(chunk.get());
        }
    }

    @Override
    public void eachLine(String id, Consumer<String> line) {
        var partial = new ByteArrayOutputStream();
        for (int seq = 0; ; seq++) {
            Optional<byte[]> chunk = chunk(id, seq);
            if (chunk.isEmpty()) {
                break;
            }
            byte[] bytes = chunk.get();
            int start = 0;
            for (int i = 0; i < bytes.length; i++) {
                if (bytes[i] == '\n') {
                    partial.write(bytes, start, i - start);
                    line.accept(text(partial));
                    partial.reset();
                    start = i + 1;
                }
            }
            partial.write(bytes, start, bytes.length - start);
        }
        if (partial.size() > 0) {
            line.accept(text(partial));
        }
    }

    private static String text(ByteArrayOutputStream line) {
        String text = line.toString(StandardCharsets.UTF_8);
        return text.endsWith("\r") ? text.substring(0, text.length() - 1) : text;
    }

    private Optional<byte[]> chunk(String id, int seq) {
        return jdbc.sql("SELECT data FROM batch_file_chunk WHERE file_id = ? AND seq = ?").params(id, seq)
                .query((rs, row) -> rs.getBytes(1)).optional();
    }

    @Override
    public boolean delete(long user, String id) {
        return jdbc.sql("DELETE FROM batch_file WHERE id = ? AND user_id = ?").params(id, user).update() == 1;
    }

    @Override
    public int deleteExpired(Instant now) {
        return jdbc.sql("DELETE FROM batch_file WHERE expires_at < ?").params(Timestamp.from(now)).update();
    }

    static StoredFile file(ResultSet rs, int row) throws SQLException {
        Timestamp expires = rs.getTimestamp("expires_at");
        return new StoredFile(rs.getString("id"), rs.getLong("user_id"), rs.getString("filename"), rs.getString("purpose"),
                rs.getLong("bytes"), rs.getInt("lines"), rs.getTimestamp("created_at").toInstant(),
                expires == null ? null : expires.toInstant());
    }
}
