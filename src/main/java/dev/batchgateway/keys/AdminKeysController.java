package dev.batchgateway.keys;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import static dev.batchgateway.http.Refusals.badRequest;
import static dev.batchgateway.http.Refusals.shown;

import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.http.Refusals;
import dev.batchgateway.http.RequestValues;
import dev.batchgateway.identity.AdminAction;
import dev.batchgateway.identity.ApiKey;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.AuditTrail;
import dev.batchgateway.identity.AuditTrail.Recorded;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.KeyLimits;
import dev.batchgateway.identity.KeyTerms;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.server.ResponseStatusException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The operator's API for keys: {@code POST /admin/keys}, {@code GET /admin/keys?user_id=}, {@code DELETE
 * /admin/keys/{id}}. Only the admin token reaches it (the web adapter's {@code BearerAuthentication} checks it); a
 * key's secret appears in the answer to its creation and nowhere else. A key may be issued with an expiry
 * ({@code expires_at}), for some of the served models only ({@code models}), and with the service tier its requests run
 * in by default ({@code service_tier}: {@code default} or {@code flex}); creating and revoking are audited.
 */
@RestController
class AdminKeysController {

    private static final Set<String> FIELDS = Set.of("user_id", "name", "expires_at", "models", "limits", "service_tier");
    private static final int MAX_NAME_LENGTH = 100;

    private final ApiKeys keys;
    private final Callers callers;
    private final AuditTrail audit;
    private final List<String> servedModels;
    private final JsonMapper json;

    /** @param json the application's mapper, with the gateway's read limits and strict duplicate detection */
    AdminKeysController(ApiKeys keys, Callers callers, AuditTrail audit, ServedModels served, JsonMapper json) {
        this.keys = keys;
        this.callers = callers;
        this.audit = audit;
        this.servedModels = served.names();
        this.json = json;
    }

    /** A key's own limits as the user limits API shows a user's: each null for none. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Limits(
            @JsonProperty("tokens_per_day") Long tokensPerDay,
            @JsonProperty("tokens_per_month") Long tokensPerMonth,
            @JsonProperty("requests_per_minute") Long requestsPerMinute) {

        static Limits of(KeyLimits limits) {
            return new Limits(limits.tokensPerDay(), limits.tokensPerMonth(), limits.requestsPerMinute());
        }
    }

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Created(
            @JsonProperty("id") String id,
            @JsonProperty("key") String key,
            @JsonProperty("user_id") long userId,
            @JsonProperty("name") String name,
            @JsonProperty("created_at") String createdAt,
            @JsonProperty("expires_at") String expiresAt,
            @JsonProperty("models") List<String> models,
            @JsonProperty("limits") Limits limits,
            @JsonProperty("service_tier") String serviceTier) {

        /** Never shows the secret, should this answer ever be printed. */
        @Override
        public String toString() {
            return "Created[id=" + id + ", user_id=" + userId + "]";
        }
    }

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Listed(
            @JsonProperty("id") String id,
            @JsonProperty("prefix") String prefix,
            @JsonProperty("user_id") long userId,
            @JsonProperty("name") String name,
            @JsonProperty("created_at") String createdAt,
            @JsonProperty("revoked_at") String revokedAt,
            @JsonProperty("last_used_at") String lastUsedAt,
            @JsonProperty("expires_at") String expiresAt,
            @JsonProperty("models") List<String> models,
            @JsonProperty("limits") Limits limits,
            @JsonProperty("service_tier") String serviceTier) {

        static Listed of(ApiKey key) {
            KeyTerms terms = key.terms();
            return new Listed(key.id().toString(), key.prefix(), key.userId(), key.name(), text(key.createdAt()),
                    text(key.revokedAt()), text(key.lastUsedAt()), text(terms.expiresAt()), AdminKeysController.models(terms),
                    Limits.of(terms.limits()), terms.serviceTier());
        }
    }

    record Listing(@JsonProperty("keys") List<Listed> keys) {}

    @PostMapping(path = "/admin/keys", produces = MediaType.APPLICATION_JSON_VALUE)
    ResponseEntity<Created> create(Caller who, @RequestBody(required = false) byte[] bytes) {
        Caller.Operator operator = callers.mayManageKeys(who);
        JsonNode body = RequestValues.jsonObject(bytes, json, "user_id and name");
        RequestValues.onlyFields(body, FIELDS, "", "a key has only user_id, name, expires_at, models, limits and service_tier");
        long userId = RequestValues.userId(body.get("user_id"));
        String name = name(body.get("name"));
        var terms = new KeyTerms(expiresAt(body.get("expires_at")), models(body.get("models")), limits(body.get("limits")),
                serviceTier(body.get("service_tier")));
        var issued = audit.record(() -> {
            try {
                var created = keys.issue(userId, name, terms);
                return Recorded.of(created, AdminAction.by(operator, AdminAction.Kind.KEY_CREATED,
                        "keys/" + created.key().id(), described(created.key())));
            } catch (IllegalArgumentException expiresAtOnce) {
                throw badRequest(expiresAtOnce.getMessage());
            }
        });
        var key = issued.key();
        return ResponseEntity.status(HttpStatus.CREATED)
                .body(new Created(key.id().toString(), issued.secret(), key.userId(), key.name(), text(key.createdAt()),
                        text(key.terms().expiresAt()), models(key.terms()), Limits.of(key.terms().limits()),
                        key.terms().serviceTier()));
    }

    @GetMapping(path = "/admin/keys", produces = MediaType.APPLICATION_JSON_VALUE)
    Listing list(Caller who, @RequestParam(name = "user_id", required = false) String userId) {
        callers.mayManageKeys(who);
        if (userId == null) {
            throw badRequest("user_id is required: GET /admin/keys?user_id=42");
        }
        return new Listing(keys.ofUser(RequestValues.userId(userId)).stream().map(Listed::of).toList());
    }

    @DeleteMapping(path = "/admin/keys/{id}")
    ResponseEntity<Void> revoke(Caller who, @PathVariable("id") String id) {
        Caller.Operator operator = callers.mayManageKeys(who);
        UUID keyId = RequestValues.uuid("the key id", id);
        var revoked = audit.record(() -> keys.revoke(keyId)
                .map(key -> {
                    Map<String, Object> change = new LinkedHashMap<>();
                    change.put("user_id", key.userId());
                    change.put("revoked_at", text(key.revokedAt()));
                    return Recorded.of(key, AdminAction.by(operator, AdminAction.Kind.KEY_REVOKED, "keys/" + key.id(), change));
                })
                .orElseGet(() -> Recorded.nothing(null)));
        if (revoked == null) {
            throw new ResponseStatusException(HttpStatus.NOT_FOUND, "no key has the id " + id);
        }
        return ResponseEntity.noContent().build();
    }

    /** What the audit log keeps of a new key: whose it is and its terms, never its secret nor its prefix. */
    private static Map<String, Object> described(ApiKey key) {
        Map<String, Object> change = new LinkedHashMap<>();
        change.put("user_id", key.userId());
        change.put("name", key.name());
        change.put("expires_at", text(key.terms().expiresAt()));
        change.put("models", models(key.terms()));
        change.put("service_tier", key.terms().serviceTier());
        return change;
    }

    /** null: every model served. */
    private static List<String> models(KeyTerms terms) {
        return terms.models().isEmpty() ? null : terms.models();
    }

    /** RFC 3339 with an offset, in the future (checked by the key's issuer against its clock); null: no expiry. */
    private static Instant expiresAt(JsonNode expiresAt) {
        if (expiresAt == null || expiresAt.isNull()) {
            return null;
        }
        return RequestValues.rfc3339(expiresAt.isString() ? expiresAt.stringValue() : null).orElseThrow(() -> badRequest(
                "expires_at must be an RFC 3339 time with an offset, e.g. \"2027-01-31T00:00:00Z\"; was "
                        + shown(String.valueOf(expiresAt))));
    }

    /**
     * The models a key may use, each one the gateway serves (a misspelt name is refused here, not found out by the key's
     * user); null or absent: every model served.
     */
    private List<String> models(JsonNode models) {
        if (models == null || models.isNull()) {
            return List.of();
        }
        if (!models.isArray() || models.isEmpty()) {
            throw badRequest("models must be a non-empty JSON array of model names; leave it out for every model");
        }
        var named = new LinkedHashSet<String>();
        var unknown = new ArrayList<String>();
        for (JsonNode model : models) {
            if (!model.isString()) {
                throw badRequest("models must be a JSON array of model names (strings)");
            }
            String name = model.stringValue();
            if (!servedModels.contains(name)) {
                unknown.add(shown(name));
            }
            named.add(name);
        }
        if (!unknown.isEmpty()) {
            throw badRequest("models not served by this gateway: " + String.join(", ", unknown)
                    + "; it serves " + String.join(", ", servedModels));
        }
        return List.copyOf(named);
    }

    /**
     * The tier the key's requests run in when they ask for {@code auto} or name none: {@code default} or {@code flex};
     * null or absent: {@code default}. {@code auto} itself is refused: it is what this setting gives a meaning to.
     */
    private static String serviceTier(JsonNode tier) {
        if (tier == null || tier.isNull()) {
            return ServiceTier.DEFAULT.wireName();
        }
        return ServiceTier.named(tier.isString() ? tier.stringValue() : null)
                .map(ServiceTier::wireName)
                .orElseThrow(() -> badRequest("service_tier must be \"default\" or \"flex\" (the tier the key's requests"
                        + " asking for auto run in), was " + Refusals.shown(String.valueOf(tier))));
    }

    /** The key's own limits, in the shape of a user's (every field given, null for none), enforced beside the user's. */
    private static KeyLimits limits(JsonNode limits) {
        if (limits == null || limits.isNull()) {
            return KeyLimits.NONE;
        }
        if (!limits.isObject()) {
            throw badRequest("limits must be a JSON object with " + String.join(", ", RequestValues.LIMIT_FIELDS));
        }
        var given = RequestValues.limits(limits, "limits.", RequestValues.LimitRefusal.ONE_SENTENCE);
        return new KeyLimits(given.tokensPerDay(), given.tokensPerMonth(), given.requestsPerMinute());
    }

    private static String name(JsonNode name) {
        if (name == null || name.isNull()) {
            throw badRequest("name is required: say what the key is for, e.g. \"ci\"");
        }
        if (!name.isString() || name.stringValue().isBlank()) {
            throw badRequest("name must be a non-blank JSON string");
        }
        String text = name.stringValue().strip();
        if (text.length() > MAX_NAME_LENGTH) {
            throw badRequest("name must be at most " + MAX_NAME_LENGTH + " characters");
        }
        if (text.chars().anyMatch(Character::isISOControl) || RequestValues.hasUnpairedSurrogate(text)) {
            throw badRequest("name must be printable text");
        }
        return text;
    }

    private static String text(Instant instant) {
        return instant == null ? null : instant.toString();
    }
}
