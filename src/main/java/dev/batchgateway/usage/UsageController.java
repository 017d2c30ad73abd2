package dev.batchgateway.usage;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.budget.BudgetUnavailableException;
import dev.batchgateway.budget.Budgets;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.budget.Window;
import dev.batchgateway.http.Refusals;
import dev.batchgateway.http.RequestValues;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import org.springframework.dao.DataAccessException;
import org.springframework.http.MediaType;
import org.springframework.web.ErrorResponseException;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/**
 * {@code GET /usage/{user_id}?from=&to=&group_by=day|model|service_tier}: a user's completions and tokens, from the daily
 * rollups and the ledger's rows, in total (split by outcome and by service tier) and, with {@code group_by}, per UTC day,
 * model or service tier, with the user's limits and what
 * remains of them in the current windows. {@code from} is inclusive and {@code to} exclusive, so consecutive windows
 * never count a row twice. Failures are Spring's own
 * {@link ErrorResponseException}s, rendered as problem+json by the application's problem handling.
 */
@RestController
class UsageController {

    private final JdbcUsageTotals totals;
    private final Callers callers;
    private final Budgets budgets;

    UsageController(JdbcUsageTotals totals, Callers callers, Budgets budgets) {
        this.totals = totals;
        this.callers = callers;
        this.budgets = budgets;
    }

    /**
     * The totals, the user's limits, what remains of them now for a new request, and what requests in flight on this
     * instance have reserved (both null where unlimited): remaining is the limit less what is billed and reserved.
     */
    record Usage(
            @JsonProperty("user_id") long userId,
            @JsonProperty("requests") long requests,
            @JsonProperty("prompt_tokens") long promptTokens,
            @JsonProperty("completion_tokens") long completionTokens,
            @JsonProperty("tokens") long tokens,
            @JsonProperty("by_outcome") java.util.Map<String, UsageTotals.Sum> byOutcome,
            @JsonProperty("by_service_tier") java.util.Map<String, UsageTotals.Sum> byServiceTier,
            @JsonProperty("group_by") @JsonInclude(JsonInclude.Include.NON_NULL) String groupBy,
            @JsonProperty("groups") @JsonInclude(JsonInclude.Include.NON_NULL) java.util.List<UsageTotals.Group> groups,
            @JsonProperty("limits") LimitsShown limits,
            @JsonProperty("remaining") Remaining remaining,
            @JsonProperty("reserved") Remaining reserved) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record LimitsShown(
            @JsonProperty("tokens_per_day") Long tokensPerDay,
            @JsonProperty("tokens_per_month") Long tokensPerMonth,
            @JsonProperty("requests_per_minute") Long requestsPerMinute) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Remaining(
            @JsonProperty("tokens_today") Long tokensToday,
            @JsonProperty("tokens_this_month") Long tokensThisMonth,
            @JsonProperty("requests_this_minute") Long requestsThisMinute) {}

    @GetMapping(path = "/usage/{user_id}", produces = MediaType.APPLICATION_JSON_VALUE)
    Usage usage(
            Caller who,
            @PathVariable("user_id") String userId,
            @RequestParam(name = "from", required = false) String from,
            @RequestParam(name = "to", required = false) String to,
            @RequestParam(name = "group_by", required = false) String groupBy) {
        callers.requireKnown(who);
        long user = RequestValues.userId(userId);
        callers.mayReadUsage(who, user);
        RequestValues.Range window = RequestValues.range(from, to);
        JdbcUsageTotals.Grouping grouping = grouping(groupBy);
        try {
            UsageTotals sums = grouping == JdbcUsageTotals.Grouping.NONE
                    ? totals.totals(user, window.from(), window.to())
                    : UsageTotals.grouped(user, groupBy, totals.grouped(user, window.from(), window.to(), grouping));
            Budgets.Standing standing = budgets.standing(user);
            Limits limits = standing.limits();
            var remaining = standing.remaining();
            var reserved = standing.reserved();
            return new Usage(sums.userId(), sums.requests(), sums.promptTokens(), sums.completionTokens(), sums.tokens(),
                    sums.byOutcome(), sums.byServiceTier(), sums.groupBy(), sums.groups(),
                    new LimitsShown(limits.tokensPerDay(), limits.tokensPerMonth(), limits.requestsPerMinute()),
                    new Remaining(remaining.get(Window.DAY), remaining.get(Window.MONTH), remaining.get(Window.MINUTE)),
                    new Remaining(reserved.get(Window.DAY), reserved.get(Window.MONTH), reserved.get(Window.MINUTE)));
        } catch (DataAccessException | BudgetUnavailableException away) {
            throw unavailable(away);
        }
    }

    /** A 503 with Retry-After for a usage database (or the budgets kept in it) that did not answer. */
    static ErrorResponseException unavailable(RuntimeException away) {
        return Refusals.unavailable("usage database", away);
    }

    private static JdbcUsageTotals.Grouping grouping(String groupBy) {
        return switch (groupBy) {
            case null -> JdbcUsageTotals.Grouping.NONE;
            case "day" -> JdbcUsageTotals.Grouping.DAY;
            case "model" -> JdbcUsageTotals.Grouping.MODEL;
            case "service_tier" -> JdbcUsageTotals.Grouping.SERVICE_TIER;
            default -> throw Refusals.badRequest("group_by must be day, model or service_tier, was '" + Refusals.shown(groupBy) + "'");
        };
    }
}
