package dev.batchgateway.limits;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.budget.Budgets;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.http.RequestValues;
import dev.batchgateway.identity.AdminAction;
import dev.batchgateway.identity.AuditTrail;
import dev.batchgateway.identity.AuditTrail.Recorded;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The operator's API for limits: {@code PUT /admin/users/{user_id}/limits} sets a user's own limits, all three
 * ({@code null}: unlimited), {@code GET} the same path reads them: the user's own, or the defaults
 * ({@code "source": "defaults"}), and {@code DELETE} puts the user back on the defaults. Only the admin token reaches
 * it; setting and clearing are audited, with the limits before and after.
 */
@RestController
class AdminLimitsController {

    private final Budgets budgets;
    private final Callers callers;
    private final AuditTrail audit;
    private final JsonMapper json;

    /** @param json the application's mapper, with the gateway's read limits and strict duplicate detection */
    AdminLimitsController(Budgets budgets, Callers callers, AuditTrail audit, JsonMapper json) {
        this.budgets = budgets;
        this.callers = callers;
        this.audit = audit;
        this.json = json;
    }

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Stored(
            @JsonProperty("user_id") long userId,
            @JsonProperty("tokens_per_day") Long tokensPerDay,
            @JsonProperty("tokens_per_month") Long tokensPerMonth,
            @JsonProperty("requests_per_minute") Long requestsPerMinute,
            @JsonProperty("source") String source) {

        static Stored of(Budgets.UserLimits limits) {
            Limits l = limits.limits();
            return new Stored(limits.user(), l.tokensPerDay(), l.tokensPerMonth(), l.requestsPerMinute(),
                    limits.own() ? "user" : "defaults");
        }
    }

    @PutMapping(path = "/admin/users/{user_id}/limits", produces = MediaType.APPLICATION_JSON_VALUE)
    Stored put(Caller who, @PathVariable("user_id") String userId, @RequestBody(required = false) byte[] bytes) {
        Caller.Operator operator = callers.mayManageLimits(who);
        long user = RequestValues.userId(userId);
        JsonNode body = RequestValues.jsonObject(bytes, json, String.join(", ", RequestValues.LIMIT_FIELDS));
        var given = RequestValues.limits(body, "", RequestValues.LimitRefusal.TYPE_THEN_RANGE);
        var limits = new Limits(given.tokensPerDay(), given.tokensPerMonth(), given.requestsPerMinute());
        return Stored.of(audit.record(() -> {
            Budgets.UserLimits before = budgets.limits(user);
            Budgets.UserLimits after = budgets.setLimits(user, limits);
            return Recorded.of(after, AdminAction.by(operator, AdminAction.Kind.LIMITS_SET, target(user), change(before, after)));
        }));
    }

    /** Puts the user back on the defaults: 204 whether or not it had limits of its own (audited either way). */
    @DeleteMapping(path = "/admin/users/{user_id}/limits")
    ResponseEntity<Void> clear(Caller who, @PathVariable("user_id") String userId) {
        Caller.Operator operator = callers.mayManageLimits(who);
        long user = RequestValues.userId(userId);
        audit.record(() -> {
            Budgets.UserLimits before = budgets.limits(user);
            Budgets.UserLimits after = budgets.clearLimits(user);
            return Recorded.of(after, AdminAction.by(operator, AdminAction.Kind.LIMITS_CLEARED, target(user), change(before, after)));
        });
        return ResponseEntity.noContent().build();
    }

    private static String target(long user) {
        return "users/" + user + "/limits";
    }

    /** The limits that applied before and after, as {@code GET} shows them, for the audit log. */
    private static Map<String, Object> change(Budgets.UserLimits before, Budgets.UserLimits after) {
        Map<String, Object> change = new LinkedHashMap<>();
        change.put("before", shown(before));
        change.put("after", shown(after));
        return change;
    }

    private static Map<String, Object> shown(Budgets.UserLimits limits) {
        Map<String, Object> shown = new LinkedHashMap<>();
        shown.put("tokens_per_day", limits.limits().tokensPerDay());
        shown.put("tokens_per_month", limits.limits().tokensPerMonth());
        shown.put("requests_per_minute", limits.limits().requestsPerMinute());
        shown.put("source", limits.own() ? "user" : "defaults");
        return shown;
    }

    @GetMapping(path = "/admin/users/{user_id}/limits", produces = MediaType.APPLICATION_JSON_VALUE)
    Stored get(Caller who, @PathVariable("user_id") String userId) {
        callers.mayManageLimits(who);
        return Stored.of(budgets.limits(RequestValues.userId(userId)));
    }
}
