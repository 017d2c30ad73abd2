package dev.batchgateway.usage;

import dev.batchgateway.http.Refusals;
import dev.batchgateway.http.RequestValues;
import dev.batchgateway.identity.AdminAction;
import dev.batchgateway.identity.AuditTrail;
import dev.batchgateway.identity.AuditTrail.Recorded;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.dao.DataAccessException;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/**
 * {@code GET /admin/usage?from=&to=&group_by=user|model|day|service_tier}: every user's usage in a window for billing,
 * per user (the default), model, UTC day or service tier; JSON, or CSV with {@code Accept: text/csv}. The admin token only. The same sums as
 * {@code /usage}: whole days from the daily rollups, part days at the window's edges from the rows (a window on
 * midnights reads only rollups). Every export is audited: its window, grouping and format.
 */
@RestController
class AdminUsageController {

    private static final MediaType CSV = new MediaType("text", "csv", java.nio.charset.StandardCharsets.UTF_8);

    /** The JSON answer: the window, how it is grouped, and the groups in key order with their totals. */
    record Export(
            @com.fasterxml.jackson.annotation.JsonProperty("from") Instant from,
            @com.fasterxml.jackson.annotation.JsonProperty("to") Instant to,
            @com.fasterxml.jackson.annotation.JsonProperty("group_by") String groupBy,
            @com.fasterxml.jackson.annotation.JsonProperty("groups") List<UsageTotals.Group> groups) {}

    private final JdbcUsageTotals totals;
    private final Callers callers;
    private final AuditTrail audit;

    AdminUsageController(JdbcUsageTotals totals, Callers callers, AuditTrail audit) {
        this.totals = totals;
        this.callers = callers;
        this.audit = audit;
    }

    @GetMapping(path = "/admin/usage", produces = {MediaType.APPLICATION_JSON_VALUE, "text/csv"})
    ResponseEntity<?> export(
            Caller who,
            @RequestParam(name = "from", required = false) String from,
            @RequestParam(name = "to", required = false) String to,
            @RequestParam(name = "group_by", required = false) String groupBy,
            @RequestHeader(name = "Accept", required = false) String accept) {
        Caller.Operator operator = callers.mayExportUsage(who);
        RequestValues.Range window = RequestValues.range(from, to);
        Instant start = window.from();
        Instant end = window.to();
        String by = groupBy == null ? "user" : groupBy;
        JdbcUsageTotals.Grouping grouping = switch (by) {
            case "user" -> JdbcUsageTotals.Grouping.USER;
            case "model" -> JdbcUsageTotals.Grouping.MODEL;
            case "day" -> JdbcUsageTotals.Grouping.DAY;
            case "service_tier" -> JdbcUsageTotals.Grouping.SERVICE_TIER;
            default -> throw Refusals.badRequest(
                    "group_by must be user, model, day or service_tier, was '" + Refusals.shown(by) + "'");
        };
        // CSV only when asked for by name: curl's */* and a browser's text/* get JSON
        boolean asCsv = accept != null && MediaType.parseMediaTypes(accept).stream()
                .anyMatch(type -> type.getType().equals("text") && type.getSubtype().equals("csv"));
        Map<String, Map<UsageTotals.Split, UsageTotals.Sum>> groups = audit.record(() -> {
            Map<String, Map<UsageTotals.Split, UsageTotals.Sum>> read;
            try {
                read = totals.grouped(null, start, end, grouping);
            } catch (DataAccessException away) {
                throw UsageController.unavailable(away);
            }
            Map<String, Object> asked = new LinkedHashMap<>();
            asked.put("from", start == null ? null : start.toString());
            asked.put("to", end == null ? null : end.toString());
            asked.put("group_by", by);
            asked.put("format", asCsv ? "csv" : "json");
            asked.put("groups", read.size());
            return Recorded.of(read, AdminAction.by(operator, AdminAction.Kind.USAGE_EXPORTED, "usage", asked));
        });
        var entries = new ArrayList<>(groups.entrySet());
        if (grouping == JdbcUsageTotals.Grouping.USER) {
            entries.sort(Comparator.comparingLong(entry -> Long.parseLong(entry.getKey())));
        }
        List<UsageTotals.Group> rows = UsageTotals.grouped(1, by, List.copyOf(entries)).groups();
        if (asCsv) {
            return ResponseEntity.ok().contentType(CSV).body(csv(by, rows));
        }
        return ResponseEntity.ok().contentType(MediaType.APPLICATION_JSON).body(new Export(start, end, by, rows));
    }

    /** RFC 4180: a header line, one line per group, CRLF line ends; a field with a comma, quote or line break quoted. */
    private static String csv(String by, List<UsageTotals.Group> groups) {
        var out = new StringBuilder();
        out.append(by.equals("user") ? "user_id" : by).append(",requests,prompt_tokens,completion_tokens,tokens\r\n");
        for (var group : groups) {
            String key = switch (by) {
                case "user" -> Long.toString(group.userId());
                case "day" -> group.day();
                case "service_tier" -> group.serviceTier();
                default -> group.model();
            };
            out.append(field(key)).append(',').append(group.requests()).append(',').append(group.promptTokens())
                    .append(',').append(group.completionTokens()).append(',').append(group.tokens()).append("\r\n");
        }
        return out.toString();
    }

    private static String field(String value) {
        if (value.chars().noneMatch(c -> c == ',' || c == '"' || c == '\r' || c == '\n')) {
            return value;
        }
        return '"' + value.replace("\"", "\"\"") + '"';
    }
}
