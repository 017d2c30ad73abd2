package dev.batchgateway.identity;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One thing the operator did, as the audit log keeps it: which admin token did it (its id, never the token), what was
 * done, to what, and the change. Nothing here is a secret: a created key appears by its id, never its secret or prefix.
 *
 * @param adminTokenId the {@linkplain AdminTokens#idOf id} of the admin token used
 * @param target what the action was done to, as the admin API's path names it: {@code keys/<id>}, {@code users/42/limits},
 *     {@code usage}
 * @param change what changed, or what was asked for (an export's window), as JSON-ready values in order
 */
public record AdminAction(String adminTokenId, Kind kind, String target, Map<String, Object> change) {

    /** What the operator did; {@link #word()} is how the audit log and its log lines name it. */
    public enum Kind {
        KEY_CREATED("key.created"),
        KEY_REVOKED("key.revoked"),
        LIMITS_SET("limits.set"),
        LIMITS_CLEARED("limits.cleared"),
        USAGE_EXPORTED("usage.exported");

        private final String word;

        Kind(String word) {
            this.word = word;
        }

        public String word() {
            return word;
        }
    }

    public AdminAction {
        Objects.requireNonNull(adminTokenId, "adminTokenId");
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(target, "target");
        // values may be null (an unlimited limit); the order is kept for the log line
        change = Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(change, "change")));
    }

    /** An action of the operator who called: the admin token it came with is named by its id. */
    public static AdminAction by(Caller.Operator operator, Kind kind, String target, Map<String, Object> change) {
        return new AdminAction(operator.tokenId(), kind, target, change);
    }
}
