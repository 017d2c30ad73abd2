package dev.batchgateway.batchstore;

import dev.batchgateway.batch.BatchJob;
import dev.batchgateway.batch.BatchStatus;
import dev.batchgateway.batch.BatchStore;
import dev.batchgateway.batch.LineError;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;
import org.springframework.transaction.support.TransactionTemplate;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Batches and their lines in PostgreSQL ({@code batch}, {@code batch_line}, V14): the lines are the queue every instance
 * works from, claimed a chunk at a time with {@code FOR UPDATE SKIP LOCKED} for a lease of the database's clock, and
 * claimed again once a lease has ended. A batch whose lines have all ended becomes {@code finalizing} first, in a
 * statement of its own; then it ends in one transaction that writes its output and error files from its lines' results,
 * a thousand lines per chunk of the file.
 */
@Repository
class JdbcBatchStore implements BatchStore {

    private static final int LINES_PER_CHUNK = 1000;
    private static final String RUNNING = "('validating', 'in_progress', 'finalizing', 'cancelling')";
    private static final String EXPIRED_MESSAGE = "This request could not be executed before the completion window expired.";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    /** A batch's row with its lines' counts: live while it runs, kept in the row once it has ended. */
    private static final String SELECT = """
            SELECT b.*,
                   coalesce(b.completed, (SELECT count(*) FROM batch_line l WHERE l.batch_id = b.id AND l.state = 'done')) AS done,
                   coalesce(b.failed, (SELECT count(*) FROM batch_line l WHERE l.batch_id = b.id AND l.state = 'failed')) AS failures
            FROM batch b
            """;

    /**
     * The queued lines of the given (batch id, line) arrays, locked in key order: statements that update many lines
     * (their ends, lease renewals, lines put back) then never wait for each other in a cycle, which they did when each
     * locked its rows in the order it happened to list them (PostgreSQL's "deadlock detected").
     */
    private static final String LOCK_IN_ORDER = """
            SELECT l.batch_id, l.line FROM batch_line l
            JOIN unnest(?::text[], ?::int[]) AS r (batch_id, line) ON l.batch_id = r.batch_id AND l.line = r.line
            WHERE l.state = 'queued'
            ORDER BY l.batch_id, l.line
            FOR UPDATE OF l""";

    private final JdbcClient jdbc;
    private final TransactionTemplate transactions;

    JdbcBatchStore(JdbcClient jdbc, TransactionTemplate transactions) {
        this.jdbc = jdbc;
        this.transactions = transactions;
    }

    @Override
    public BatchJob create(String id, long user, UUID keyId, String endpoint, String inputFileId, String completionWindow,
            String metadata, Duration window) {
        jdbc.sql("""
                INSERT INTO batch (id, user_id, key_id, endpoint, input_file_id, completion_window, metadata, status, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'validating', now() + ? * interval '1 millisecond')
                """).params(id, user, keyId, endpoint, inputFileId, completionWindow, metadata, window.toMillis()).update();
        return find(user, id).orElseThrow();
    }

    @Override
    public Optional<BatchJob> find(Long user, String id) {
        return jdbc.sql(SELECT + " WHERE b.id = :id AND (CAST(:user AS bigint) IS NULL OR b.user_id = :user)")
                .param("id", id).param("user", user).query(JdbcBatchStore::batch).optional();
    }

    @Override
    public List<BatchJob> list(Long user, int limit, String after) {
        return jdbc.sql(SELECT + """
                WHERE (CAST(:user AS bigint) IS NULL OR b.user_id = :user)
                  AND (CAST(:after AS text) IS NULL
                       OR (b.created_at, b.id) < (SELECT created_at, id FROM batch WHERE id = :after))
                ORDER BY b.created_at DESC, b.id DESC
                LIMIT :limit
                """).param("user", user).param("after", after).param("limit", limit).query(JdbcBatchStore::batch).list();
    }

    @Override
    public boolean inUse(String fileId) {
        return jdbc.sql("SELECT EXISTS (SELECT 1 FROM batch WHERE input_file_id = ? AND status IN " + RUNNING + ")")
                .params(fileId).query(Boolean.class).single();
    }

    @Override
    public Optional<BatchJob> cancel(long user, String id) {
        jdbc.sql("""
                UPDATE batch SET status = 'cancelling', cancelling_at = now()
                WHERE id = ? AND user_id = ? AND status IN ('validating', 'in_progress')
                """).params(id, user).update();
        return find(user, id);
    }

    @Override
    public Optional<ToValidate> claimValidation(UUID instance, Duration lease) {
        return jdbc.sql("""
                UPDATE batch SET lease_owner = ?, lease_until = now() + ? * interval '1 millisecond'
                WHERE id = (SELECT id FROM batch
                            WHERE status = 'validating' AND (lease_until IS NULL OR lease_until < now())
                            ORDER BY created_at LIMIT 1
                            FOR UPDATE SKIP LOCKED)
                RETURNING id, user_id, endpoint, input_file_id
                """).params(instance, lease.toMillis())
                .query((rs, row) -> new ToValidate(rs.getString(1), rs.getLong(2), rs.getString(3), rs.getString(4)))
                .optional();
    }

    @Override
    public boolean anyUnfinished() {
        // the partial index batch_unfinished answers it
        return Boolean.TRUE.equals(jdbc.sql("""
                SELECT EXISTS (SELECT 1 FROM batch WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling'))
                """).query(Boolean.class).single());
    }

    @Override
    public void clearLines(String batchId) {
        jdbc.sql("DELETE FROM batch_line WHERE batch_id = ?").params(batchId).update();
    }

    @Override
    public void addLines(String batchId, List<NewLine> lines) {
        int size = lines.size();
        var numbers = new int[size];
        var customIds = new String[size];
        var urls = new String[size];
        var bodies = new String[size];
        for (int i = 0; i < size; i++) {
            numbers[i] = lines.get(i).line();
            customIds[i] = lines.get(i).customId();
            urls[i] = lines.get(i).url();
            bodies[i] = lines.get(i).body();
        }
        jdbc.sql("""
                INSERT INTO batch_line (batch_id, line, custom_id, url, body)
                SELECT ?, line, custom_id, url, body FROM unnest(?::int[], ?::text[], ?::text[], ?::text[]) AS l (line, custom_id, url, body)
                """).params(batchId, numbers, customIds, urls, bodies).update();
    }

    @Override
    public void start(String batchId, int total) {
        jdbc.sql("""
                UPDATE batch SET status = 'in_progress', in_progress_at = now(), total = ?, lease_owner = NULL, lease_until = NULL
                WHERE id = ? AND status = 'validating'
                """).params(total, batchId).update();
        // cancelled while it was validated: it ends with nothing run
        jdbc.sql("UPDATE batch SET total = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = 'cancelling'")
                .params(total, batchId).update();
    }

    @Override
    public void fail(String batchId, List<LineError> errors) {
        List<Map<String, Object>> data = new ArrayList<>();
        for (LineError error : errors) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("code", error.code());
            entry.put("message", error.message());
            entry.put("param", error.param());
            entry.put("line", error.line());
            data.add(entry);
        }
        jdbc.sql("""
                UPDATE batch SET status = 'failed', failed_at = now(), errors = ?, completed = 0, failed = 0,
                                 lease_owner = NULL, lease_until = NULL
                WHERE id = ? AND status IN ('validating', 'cancelling')
                """).params(JSON.writeValueAsString(data), batchId).update();
    }

    @Override
    public List<ClaimedLine> claim(UUID instance, int most, Duration lease) {
        // the oldest running batch with a line to claim first, then its lines in order: an index scan, not a sort
        return jdbc.sql("""
                WITH next AS (
                    SELECT l.batch_id, l.line FROM batch_line l
                    WHERE l.batch_id = (SELECT b.id FROM batch b
                                        WHERE b.status = 'in_progress' AND (b.not_before IS NULL OR b.not_before <= now())
                                          AND EXISTS (SELECT 1 FROM batch_line q
                                                      WHERE q.batch_id = b.id AND q.state = 'queued'
                                                        AND (q.lease_until IS NULL OR q.lease_until < now()))
                                        ORDER BY b.created_at LIMIT 1)
                      AND l.state = 'queued' AND (l.lease_until IS NULL OR l.lease_until < now())
                    ORDER BY l.line
                    LIMIT :most
                    FOR UPDATE OF l SKIP LOCKED
                )
                UPDATE batch_line l
                SET lease_owner = :instance, lease_until = now() + :lease * interval '1 millisecond',
                    request_id = coalesce(l.request_id, gen_random_uuid())
                FROM next, batch b
                WHERE l.batch_id = next.batch_id AND l.line = next.line AND b.id = l.batch_id
                RETURNING l.batch_id, l.line, b.user_id, b.key_id, l.custom_id, l.url, l.body, l.request_id
                """).param("most", most).param("instance", instance).param("lease", lease.toMillis())
                .query((rs, row) -> new ClaimedLine(rs.getString(1), rs.getInt(2), rs.getLong(3), rs.getObject(4, UUID.class),
                        rs.getString(5), rs.getString(6), rs.getString(7), rs.getObject(8, UUID.class)))
                .list();
    }

    @Override
    public void renew(UUID instance, Collection<LineRef> lines, Duration lease) {
        var refs = Refs.of(lines);
        jdbc.sql("""
                WITH locked AS (%s)
                UPDATE batch_line l SET lease_until = now() + ? * interval '1 millisecond'
                FROM locked
                WHERE l.batch_id = locked.batch_id AND l.line = locked.line AND l.lease_owner = ?
                """.formatted(LOCK_IN_ORDER)).params(refs.batchIds, refs.lines, lease.toMillis(), instance).update();
    }

    @Override
    public Set<String> cancelling(Collection<String> batchIds) {
        if (batchIds.isEmpty()) {
            return Set.of();
        }
        return Set.copyOf(jdbc.sql("SELECT id FROM batch WHERE id = ANY(?::text[]) AND status = 'cancelling'")
                .param(batchIds.toArray(String[]::new)).query(String.class).list());
    }

    @Override
    public void putBack(List<LineRef> lines, String batchId, Instant notBefore) {
        var refs = Refs.of(lines);
        transactions.executeWithoutResult(status -> {
            jdbc.sql("""
                    WITH locked AS (%s)
                    UPDATE batch_line l SET lease_owner = NULL, lease_until = NULL
                    FROM locked
                    WHERE l.batch_id = locked.batch_id AND l.line = locked.line
                    """.formatted(LOCK_IN_ORDER)).params(refs.batchIds, refs.lines).update();
            jdbc.sql("UPDATE batch SET not_before = greatest(coalesce(not_before, ?), ?) WHERE id = ?")
                    .params(Timestamp.from(notBefore), Timestamp.from(notBefore), batchId).update();
        });
    }

    @Override
    public void finish(List<Finished> lines) {
        int size = lines.size();
        var batchIds = new String[size];
        var numbers = new int[size];
        var states = new String[size];
        var results = new String[size];
        for (int i = 0; i < size; i++) {
            Finished line = lines.get(i);
            batchIds[i] = line.batchId();
            numbers[i] = line.line();
            states[i] = line.succeeded() ? "done" : "failed";
            results[i] = line.result();
        }
        jdbc.sql("""
                WITH locked AS (%s)
                UPDATE batch_line l SET state = f.state, result = f.result, lease_owner = NULL, lease_until = NULL
                FROM locked, unnest(?::text[], ?::int[], ?::text[], ?::text[]) AS f (batch_id, line, state, result)
                WHERE l.batch_id = locked.batch_id AND l.line = locked.line
                  AND f.batch_id = locked.batch_id AND f.line = locked.line
                """.formatted(LOCK_IN_ORDER)).params(batchIds, numbers, batchIds, numbers, states, results).update();
    }

    @Override
    public int finishDue(UUID instance, Duration lease, Duration retention) {
        // past their window: the lines nobody runs expire; the batch becomes expired (and gets its expired_at) once
        // the lines in flight have ended too, in end()
        jdbc.sql("""
                WITH expiring AS (
                    SELECT id FROM batch WHERE status = 'in_progress' AND expires_at < now()
                )
                UPDATE batch_line l
                SET state = 'failed', lease_owner = NULL, lease_until = NULL,
                    result = json_build_object(
                            'id', 'batch_req_' || replace(coalesce(l.request_id, gen_random_uuid())::text, '-', ''),
                            'custom_id', l.custom_id, 'response', NULL,
                            'error', json_build_object('code', 'batch_expired', 'message', ?))::text
                FROM expiring
                WHERE l.batch_id = expiring.id AND l.state = 'queued' AND (l.lease_until IS NULL OR l.lease_until < now())
                """).params(EXPIRED_MESSAGE).update();
        jdbc.sql("""
                UPDATE batch SET status = 'expired', expired_at = now(), completed = 0, failed = 0
                WHERE status = 'validating' AND expires_at < now() AND (lease_until IS NULL OR lease_until < now())
                """).update();
        startFinalizing();
        List<String> due = jdbc.sql("""
                SELECT b.id FROM batch b
                WHERE b.status = 'finalizing'
                   OR (b.status = 'in_progress' AND b.expires_at < now()
                       AND NOT EXISTS (SELECT 1 FROM batch_line l WHERE l.batch_id = b.id AND l.state = 'queued'))
                   OR (b.status = 'cancelling' AND (b.lease_until IS NULL OR b.lease_until < now())
                       AND NOT EXISTS (SELECT 1 FROM batch_line l WHERE l.batch_id = b.id AND l.state = 'queued'
                                       AND l.lease_until >= now()))
                ORDER BY b.created_at
                LIMIT 16
                """).query(String.class).list();
        int ended = 0;
        for (String batchId : due) {
            Boolean done = transactions.execute(status -> end(batchId, retention));
            ended += Boolean.TRUE.equals(done) ? 1 : 0;
        }
        // the lines of batches whose files have gone: their counts stay in the batch's row
        jdbc.sql("""
                DELETE FROM batch_line WHERE batch_id IN (
                    SELECT id FROM batch WHERE status IN ('completed', 'expired', 'cancelled', 'failed')
                      AND coalesce(completed_at, expired_at, cancelled_at, failed_at) < now() - ? * interval '1 millisecond')
                """).params(retention.toMillis()).update();
        return ended;
    }

    /**
     * Running batches in their window whose every line has ended become {@code finalizing}, committed before their files
     * are written (by {@link #finishDue} of any instance), so a client polling sees OpenAI's {@code finalizing}.
     *
     * @return the batches that became finalizing
     */
    int startFinalizing() {
        return jdbc.sql("""
                UPDATE batch b SET status = 'finalizing', finalizing_at = now()
                WHERE b.status = 'in_progress' AND b.expires_at >= now()
                  AND NOT EXISTS (SELECT 1 FROM batch_line l WHERE l.batch_id = b.id AND l.state = 'queued')
                """).update();
    }

    /** Ends one batch, if it is still due and nobody else is ending it: its files, its counts, its status. */
    private boolean end(String batchId, Duration retention) {
        var row = jdbc.sql("SELECT user_id, status, expires_at < now() FROM batch WHERE id = ? FOR UPDATE SKIP LOCKED")
                .params(batchId)
                .query((rs, n) -> new Object[] {rs.getLong(1), rs.getString(2), rs.getBoolean(3)}).optional();
        if (row.isEmpty()) {
            return false;
        }
        long user = (Long) row.get()[0];
        String status = (String) row.get()[1];
        boolean expired = (Boolean) row.get()[2]; // past its window: its unclaimed lines were expired above
        String target = switch (status) {
            case "in_progress" -> expired ? "expired" : null; // in its window it becomes finalizing first
            case "finalizing" -> "completed";
            case "cancelling" -> "cancelled";
            default -> null;
        };
        if (target == null) {
            return false;
        }
        boolean stillQueued = jdbc.sql("""
                SELECT EXISTS (SELECT 1 FROM batch_line WHERE batch_id = ? AND state = 'queued'
                               AND (? OR lease_until >= now()))
                """).params(batchId, target.equals("cancelled") ? false : true).query(Boolean.class).single();
        if (stillQueued) {
            return false;
        }
        String output = file(batchId, user, "done", batchId + "_output.jsonl", retention);
        String errors = file(batchId, user, "failed", batchId + "_error.jsonl", retention);
        String timeColumn = switch (target) {
            case "completed" -> "completed_at = now()";
            case "expired" -> "expired_at = now()";
            default -> "cancelled_at = now()";
        };
        jdbc.sql("""
                UPDATE batch SET status = ?, %s, output_file_id = ?, error_file_id = ?,
                       completed = (SELECT count(*) FROM batch_line WHERE batch_id = batch.id AND state = 'done'),
                       failed = (SELECT count(*) FROM batch_line WHERE batch_id = batch.id AND state = 'failed'),
                       lease_owner = NULL, lease_until = NULL
                WHERE id = ?
                """.formatted(timeColumn)).params(target, output, errors, batchId).update();
        return true;
    }

    /** The file of the batch's lines in {@code state}, in line order; null when there are none. */
    private String file(String batchId, long user, String state, String filename, Duration retention) {
        String id = "file-" + UUID.randomUUID().toString().replace("-", "");
        jdbc.sql("""
                INSERT INTO batch_file (id, user_id, filename, purpose, bytes, lines, expires_at)
                VALUES (?, ?, ?, 'batch_output', 0, 0, now() + ? * interval '1 millisecond')
                """).params(id, user, filename, retention.toMillis()).update();
        jdbc.sql("""
                INSERT INTO batch_file_chunk (file_id, seq, data)
                SELECT ?, chunk, convert_to(string_agg(result || E'\\n', '' ORDER BY line), 'UTF8')
                FROM (SELECT line, result, (row_number() OVER (ORDER BY line) - 1) / %d AS chunk
                      FROM batch_line WHERE batch_id = ? AND state = ?) numbered
                GROUP BY chunk
                """.formatted(LINES_PER_CHUNK)).params(id, batchId, state).update();
        int lines = jdbc.sql("SELECT count(*) FROM batch_line WHERE batch_id = ? AND state = ?").params(batchId, state)
                .query(Integer.class).single();
        if (lines == 0) {
            jdbc.sql("DELETE FROM batch_file WHERE id = ?").params(id).update();
            return null;
        }
        jdbc.sql("""
                UPDATE batch_file SET lines = ?,
                       bytes = (SELECT coalesce(sum(octet_length(data)), 0) FROM batch_file_chunk WHERE file_id = ?)
                WHERE id = ?
                """).params(lines, id, id).update();
        return id;
    }

    @Override
    public Census census() {
        Map<BatchStatus, Long> batches = new EnumMap<>(BatchStatus.class);
        for (BatchStatus status : BatchStatus.values()) {
            batches.put(status, 0L);
        }
        jdbc.sql("SELECT status, count(*) FROM batch GROUP BY status")
                .query((rs, row) -> batches.put(BatchStatus.named(rs.getString(1)), rs.getLong(2))).list();
        return jdbc.sql("""
                SELECT count(*) FILTER (WHERE l.state = 'queued' AND (l.lease_until IS NULL OR l.lease_until < now())),
                       count(*) FILTER (WHERE l.state = 'queued' AND l.lease_until >= now()),
                       count(*) FILTER (WHERE l.state = 'done'),
                       count(*) FILTER (WHERE l.state = 'failed')
                FROM batch_line l JOIN batch b ON b.id = l.batch_id
                WHERE b.status IN
                """ + RUNNING).query((rs, row) -> new Census(batches, rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4)))
                .single();
    }

    private record Refs(String[] batchIds, int[] lines) {
        static Refs of(Collection<LineRef> refs) {
            var batchIds = new String[refs.size()];
            var lines = new int[refs.size()];
            int i = 0;
            for (LineRef ref : refs) {
                batchIds[i] = ref.batchId();
                lines[i] = ref.line();
                i++;
            }
            return new Refs(batchIds, lines);
        }
    }

    private static BatchJob batch(ResultSet rs, int row) throws SQLException {
        List<LineError> errors = new ArrayList<>();
        String errorsJson = rs.getString("errors");
        if (errorsJson != null) {
            for (JsonNode error : JSON.readTree(errorsJson)) {
                JsonNode param = error.get("param");
                JsonNode line = error.get("line");
                errors.add(new LineError(error.get("code").stringValue(), error.get("message").stringValue(),
                        param == null || param.isNull() ? null : param.stringValue(),
                        line == null || line.isNull() ? null : line.intValue()));
            }
        }
        return new BatchJob(rs.getString("id"), rs.getLong("user_id"), rs.getString("endpoint"), rs.getString("input_file_id"),
                rs.getString("completion_window"), rs.getString("metadata"), BatchStatus.named(rs.getString("status")), errors,
                rs.getString("output_file_id"), rs.getString("error_file_id"), instant(rs, "created_at"),
                instant(rs, "in_progress_at"), instant(rs, "expires_at"), instant(rs, "finalizing_at"),
                instant(rs, "completed_at"), instant(rs, "failed_at"), instant(rs, "expired_at"), instant(rs, "cancelling_at"),
                instant(rs, "cancelled_at"),
                new BatchJob.RequestCounts(rs.getInt("total"), rs.getInt("done"), rs.getInt("failures")));
    }

    private static Instant instant(ResultSet rs, String column) throws SQLException {
        Timestamp time = rs.getTimestamp(column);
        return time == null ? null : time.toInstant();
    }
}
