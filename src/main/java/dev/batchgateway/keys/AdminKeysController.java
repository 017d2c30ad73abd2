package dev.batchgateway.keys;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.identity.ApiKey;
import dev.batchgateway.identity.ApiKeys;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.UserIds;
import java.time.Instant;
import java.util.List;
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
 * key's secret appears in the answer to its creation and nowhere else.
 */
@RestController
class AdminKeysController {

    private static final Pattern UUID_SHAPE =
            Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    private static final Set<String> FIELDS = Set.of("user_id", "name");
    private static final int MAX_NAME_LENGTH = 100;

    private final ApiKeys keys;
    private final Callers callers;
    private final JsonMapper json;

    /** @param json the application's mapper, with the gateway's read limits and strict duplicate detection */
    AdminKeysController(ApiKeys keys, Callers callers, JsonMapper json) {
        this.keys = keys;
        this.callers = callers;
        this.json = json;
    }

    record Created(
            @JsonProperty("id") String id,
            @JsonProperty("key") String key,
            @JsonProperty("user_id") long userId,
            @JsonProperty("name") String name,
            @JsonProperty("created_at") String createdAt) {

        /** Never shows the secret, should this answer ever be printed. */
        @Override
        public String toString() {
            return "Created[id=" + id + ", user_id=" + userId + "]";
        }
    }

    record Listed(
            @JsonProperty("id") String id,
            @JsonProperty("prefix") String prefix,
            @JsonProperty("user_id") long userId,
            @JsonProperty("name") String name,
            @JsonProperty("created_at") String createdAt,
            @JsonProperty("revoked_at") String revokedAt,
            @JsonProperty("last_used_at") String lastUsedAt) {

        static Listed of(ApiKey key) {
            return new Listed(key.id().toString(), key.prefix(), key.userId(), key.name(), text(key.createdAt()),
                    text(key.revokedAt()), text(key.lastUsedAt()));
        }
    }

    record Listing(@JsonProperty("keys") List<Listed> keys) {}

    @PostMapping(path = "/admin/keys", produces = MediaType.APPLICATION_JSON_VALUE)
    ResponseEntity<Created> create(Caller who, @RequestBody(required = false) byte[] bytes) {
        callers.mayManageKeys(who);
        JsonNode body = parse(bytes);
        if (body == null || !body.isObject()) {
            throw badRequest("the request body must be a JSON object with user_id and name");
        }
        for (String field : body.propertyNames()) {
            if (!FIELDS.contains(field)) {
                throw badRequest("unknown field: a key has only user_id and name");
            }
        }
        long userId = userId(body.get("user_id"));
        String name = name(body.get("name"));
        var issued = keys.issue(userId, name);
        var key = issued.key();
        return ResponseEntity.status(HttpStatus.CREATED)
                .body(new Created(key.id().toString(), issued.secret(), key.userId(), key.name(), text(key.createdAt())));
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
        callers.mayManageKeys(who);
        if (!UUID_SHAPE.matcher(id).matches()) {
            throw badRequest("the key id must be a UUID, was '" + shorten(id) + "'");
        }
        if (!keys.revoke(UUID.fromString(id))) {
            throw new ResponseStatusException(HttpStatus.NOT_FOUND, "no key has the id " + id);
        }
        return ResponseEntity.noContent().build();
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
