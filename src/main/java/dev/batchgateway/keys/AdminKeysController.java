package dev.batchgateway.keys;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.identity.AdminAction;
import dev.batchgateway.identity.ApiKey;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.AuditTrail;
import dev.batchgateway.identity.AuditTrail.Recorded;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.KeyLimits;
import dev.batchgateway.identity.KeyTerms;
import dev.batchgateway.identity.UserIds;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.regex.Pattern;
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
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The operator's API for keys: {@code POST /admin/keys}, {@code GET /admin/keys?user_id=}, {@code DELETE
 * /admin/keys/{id}}. Only the admin token reaches it (the web adapter's {@code BearerAuthentication} checks it); a
 * key's secret appears in the answer to its creation and nowhere else. A key may be issued with an expiry
 * ({@code expires_at}) and for some of the served models only ({@code models}); creating and revoking are audited.
 */
@RestController
class AdminKeysController {

    private static final Pattern UUID_SHAPE =
            Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    private static final Set<String> FIELDS = Set.of("user_id", "name", "expires_at", "models", "limits");
    private static final List<String> LIMITS = List.of("tokens_per_day", "tokens_per_month", "requests_per_minute");
    private static final int MAX_NAME_LENGTH = 100;
    /** RFC 3339: a four-digit year, a time and an offset ({@code Z} or {@code ±hh:mm}); {@code t} and {@code z} as well. */
    private static final Pattern RFC_3339_YEAR = Pattern.compile("[0-9]{4}-.*");
    private static final DateTimeFormatter RFC_3339 = new DateTimeFormatterBuilder()
            .parseCaseInsensitive().append(DateTimeFormatter.ISO_OFFSET_DATE_TIME).toFormatter();

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
            @JsonProperty("limits") Limits limits) {

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
            @JsonProperty("limits") Limits limits) {

        static Listed of(ApiKey key) {
            KeyTerms terms = key.terms();
            return new Listed(key.id().toString(), key.prefix(), key.userId(), key.name(), text(key.createdAt()),
                    text(key.revokedAt()), text(key.lastUsedAt()), text(terms.expiresAt()), AdminKeysController.models(terms),
                    Limits.of(terms.limits()));
        }
    }

    record Listing(@JsonProperty("keys") List<Listed> keys) {}

    @PostMapping(path = "/admin/keys", produces = MediaType.APPLICATION_JSON_VALUE)
    ResponseEntity<Created> create(Caller who, @RequestBody(required = false) byte[] bytes) {
        Caller.Operator operator = callers.mayManageKeys(who);
        JsonNode body = parse(bytes);
        if (body == null || !body.isObject()) {
            throw badRequest("the request body must be a JSON object with user_id and name");
        }
        for (String field : body.propertyNames()) {
            if (!FIELDS.contains(field)) {
                throw badRequest("unknown field " + shorten(field) + ": a key has only user_id, name, expires_at, models and limits");
            }
        }
        long userId = userId(body.get("user_id"));
        String name = name(body.get("name"));
        var terms = new KeyTerms(expiresAt(body.get("expires_at")), models(body.get("models")), limits(body.get("limits")));
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
                        text(key.terms().expiresAt()), models(key.terms()), Limits.of(key.terms().limits())));
    }

    @GetMapping(path = "/admin/keys", produces = MediaType.APPLICATION_JSON_VALUE)
    Listing list(Caller who, @RequestParam(name = "user_id", required = false) String userId) {
        callers.mayManageKeys(who);
        if (userId == null) {
            throw badRequest("user_id is required: GET /admin/keys?user_id=42");
        }
        return new Listing(keys.ofUser(userId(userId)).stream().map(Listed::of).toList());
    }

    @DeleteMapping(path = "/admin/keys/{id}")
    ResponseEntity<Void> revoke(Caller who, @PathVariable("id") String id) {
        Caller.Operator operator = callers.mayManageKeys(who);
        if (!UUID_SHAPE.matcher(id).matches()) {
            throw badRequest("the key id must be a UUID, was '" + shorten(id) + "'");
        }
        var revoked = audit.record(() -> keys.revoke(UUID.fromString(id))
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
        String text = expiresAt.isString() ? expiresAt.stringValue() : null;
        if (text != null && RFC_3339_YEAR.matcher(text).matches()) {
            try {
                return OffsetDateTime.parse(text, RFC_3339).toInstant();
            } catch (DateTimeParseException notATime) {
                // refused below
            }
        }
        throw badRequest("expires_at must be an RFC 3339 time with an offset, e.g. \"2027-01-31T00:00:00Z\"; was "
                + shorten(String.valueOf(expiresAt)));
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
                unknown.add(shorten(name));
            }
            named.add(name);
        }
        if (!unknown.isEmpty()) {
            throw badRequest("models not served by this gateway: " + String.join(", ", unknown)
                    + "; it serves " + String.join(", ", servedModels));
        }
        return List.copyOf(named);
    }

    /** The key's own limits, in the shape of a user's (every field given, null for none), enforced beside the user's. */
    private static KeyLimits limits(JsonNode limits) {
        if (limits == null || limits.isNull()) {
            return KeyLimits.NONE;
        }
        if (!limits.isObject()) {
            throw badRequest("limits must be a JSON object with " + String.join(", ", LIMITS));
        }
        for (String field : limits.propertyNames()) {
            if (!LIMITS.contains(field)) {
                throw badRequest("unknown field limits." + shorten(field) + ": limits are " + String.join(", ", LIMITS));
            }
        }
        return new KeyLimits(limit(limits, "tokens_per_day"), limit(limits, "tokens_per_month"),
                limit(limits, "requests_per_minute"));
    }

    /** As for a user's limits: every field given, so that a forgotten one is not silently none. */
    private static Long limit(JsonNode limits, String field) {
        if (!limits.has(field)) {
            throw badRequest("limits." + field + " is required: a whole number from 0, or null for no limit");
        }
        JsonNode value = limits.get(field);
        if (value.isNull()) {
            return null;
        }
        if (!value.isIntegralNumber() || !value.canConvertToLong() || value.longValue() < 0) {
            throw badRequest("limits." + field + " must be a JSON integer from 0 to " + Long.MAX_VALUE + ", or null for no limit");
        }
        return value.longValue();
    }

    /** Read only once the caller is known to be the operator: nobody else learns what the body should hold. */
    private JsonNode parse(byte[] bytes) {
        if (bytes == null || bytes.length == 0) {
            throw badRequest("the request body is missing: send a JSON object with user_id and name");
        }
        try {
            return json.readTree(bytes);
        } catch (JacksonException notJson) {
            throw badRequest("the request body is not valid JSON");
        }
    }

    private static long userId(JsonNode userId) {
        if (userId == null || userId.isNull()) {
            throw badRequest("user_id is required");
        }
        if (!userId.isIntegralNumber()) {
            throw badRequest("user_id must be a JSON integer");
        }
        if (!userId.canConvertToLong() || userId.longValue() < 1) {
            throw badRequest("user_id must be between 1 and " + Long.MAX_VALUE);
        }
        return userId.longValue();
    }

    private static long userId(String text) {
        return UserIds.parse(text).orElseThrow(() -> badRequest(UserIds.refusal(text)));
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
        if (text.chars().anyMatch(Character::isISOControl) || hasUnpairedSurrogate(text)) {
            throw badRequest("name must be printable text");
        }
        return text;
    }

    /** "\ud800" is valid JSON but no text: it could not be stored or written back as UTF-8. */
    private static boolean hasUnpairedSurrogate(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return true;
            }
        }
        return false;
    }

    private static String text(Instant instant) {
        return instant == null ? null : instant.toString();
    }

    private static ResponseStatusException badRequest(String detail) {
        return new ResponseStatusException(HttpStatus.BAD_REQUEST, detail);
    }

    /** A bad value is echoed to help the caller, but never at length. */
    private static String shorten(String text) {
        return text.length() <= 64 ? text : text.substring(0, 64) + "…";
    }
}
