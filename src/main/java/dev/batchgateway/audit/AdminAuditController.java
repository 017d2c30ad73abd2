package dev.batchgateway.audit;

import static dev.batchgateway.http.Refusals.badRequest;
import static dev.batchgateway.http.Refusals.shown;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.http.Refusals;
import dev.batchgateway.http.RequestValues;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.regex.Pattern;
import org.springframework.dao.DataAccessException;
import org.springframework.http.MediaType;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code GET /admin/audit?limit=&cursor=&since=}: the operator's actions, newest first, a page at a time; the admin
 * token only. {@code next_cursor} asks for the page after this one, null on the last.
 */
@RestController
class AdminAuditController {

    static final int DEFAULT_LIMIT = 100;
    static final int MAX_LIMIT = 1000;
    private static final Pattern DIGITS = Pattern.compile("[0-9]{1,18}");

    private final JdbcClient jdbc;
    private final Callers callers;
    private final JsonMapper json = JsonMapper.builder().build();

    AdminAuditController(JdbcClient jdbc, Callers callers) {
        this.jdbc = jdbc;
        this.callers = callers;
    }

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Entry(
            @JsonProperty("id") long id,
            @JsonProperty("at") String at,
            @JsonProperty("admin_token_id") String adminTokenId,
            @JsonProperty("action") String action,
            @JsonProperty("target") String target,
            @JsonProperty("change") JsonNode change) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Page(@JsonProperty("entries") List<Entry> entries, @JsonProperty("next_cursor") String nextCursor) {}

    @GetMapping(path = "/admin/audit", produces = MediaType.APPLICATION_JSON_VALUE)
    Page read(Caller who,
            @RequestParam(name = "limit", required = false) String limit,
            @RequestParam(name = "cursor", required = false) String cursor,
            @RequestParam(name = "since", required = false) String since) {
        callers.mayReadAudit(who);
        int size = limit(limit);
        long before = cursor(cursor);
        Instant from = since(since);
        List<Entry> entries;
        try {
            // one more than asked for tells whether there is a next page; ids are given in order of insertion: newest first
            entries = jdbc.sql("""
                            SELECT id, at, admin_token_id, action, target, change::text AS change
                            FROM admin_audit
                            WHERE id < ? AND at >= ?
                            ORDER BY id DESC
                            LIMIT ?""")
                    .params(before, from.atOffset(ZoneOffset.UTC), size + 1)
                    .query((rs, row) -> new Entry(rs.getLong("id"),
                            rs.getObject("at", OffsetDateTime.class).toInstant().toString(),
                            rs.getString("admin_token_id"), rs.getString("action"), rs.getString("target"),
                            json.readTree(rs.getString("change"))))
                    .list();
        } catch (DataAccessException away) {
            throw Refusals.unavailable("audit log", away);
        }
        if (entries.size() <= size) {
            return new Page(entries, null);
        }
        List<Entry> page = entries.subList(0, size);
        return new Page(List.copyOf(page), Long.toString(page.getLast().id()));
    }

    private static int limit(String text) {
        if (text == null) {
            return DEFAULT_LIMIT;
        }
        if (!DIGITS.matcher(text).matches() || Long.parseLong(text) < 1 || Long.parseLong(text) > MAX_LIMIT) {
            throw badRequest("limit must be a whole number from 1 to " + MAX_LIMIT + ", was '" + shown(text) + "'");
        }
        return Integer.parseInt(text);
    }

    /** The cursor is the id of the last entry of the page before: entries older than it follow. */
    private static long cursor(String text) {
        if (text == null) {
            return Long.MAX_VALUE;
        }
        if (!DIGITS.matcher(text).matches()) {
            throw badRequest("cursor must be a next_cursor of an earlier answer, was '" + shown(text) + "'");
        }
        return Long.parseLong(text);
    }

    private static Instant since(String text) {
        if (text == null) {
            return Instant.EPOCH;
        }
        return RequestValues.rfc3339(text).orElseThrow(() -> badRequest(
                "since must be an RFC 3339 time with an offset, e.g. 2026-12-01T00:00:00Z (+ as %2B), was '" + shown(text) + "'"));
    }
}
