package dev.batchgateway.identity;

import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The audit log of the operator's actions: every key created or revoked, limits set or cleared, usage exported leaves
 * one entry that can be read back ({@code GET /admin/audit}) and one log line.
 */
public interface AuditTrail {

    /**
     * Makes a change and records the entry it returns, both or neither: where the change is in the audit log's own
     * database, in the same transaction. The log line is written once both are committed. A change that did nothing
     * (a key id nobody has) returns no entry and leaves none.
     *
     * @throws AuditUnavailableException when the entry could not be kept; the change is then undone with it
     */
    <T> T record(Supplier<Recorded<T>> change);

    /** What a change gave, and the entry that records it (empty: nothing was done, nothing to record). */
    record Recorded<T>(T result, Optional<AdminAction> entry) {

        public Recorded {
            Objects.requireNonNull(entry, "entry");
        }

        public static <T> Recorded<T> of(T result, AdminAction entry) {
            return new Recorded<>(result, Optional.of(entry));
        }

        public static <T> Recorded<T> nothing(T result) {
            return new Recorded<>(result, Optional.empty());
        }
    }
}
