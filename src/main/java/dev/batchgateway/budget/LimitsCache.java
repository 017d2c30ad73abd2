package dev.batchgateway.budget;

import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongConsumer;

/**
 * Users' limits as this instance knows them: the store's, read again by changes since the last read (and at once when
 * an operator sets them here), the defaults for users without their own. While the store is away the last known stay.
 */
final class LimitsCache {

    /** Limits changed this long before the last read are read again: a write may commit after a read began. */
    private static final Duration LIMITS_OVERLAP = Duration.ofSeconds(10);

    private final BudgetStore store;
    private final Limits defaults;
    private final StoreStatus status;
    private final LongConsumer onChange;
    private final Map<Long, Limits> own = new ConcurrentHashMap<>();
    private final Object limitsLock = new Object();
    private volatile Instant limitsReadAt;

    /** @param onChange told of each user whose limits changed (what was leased under the old ones goes back) */
    LimitsCache(BudgetStore store, Limits defaults, StoreStatus status, LongConsumer onChange) {
        this.store = Objects.requireNonNull(store, "store");
        this.defaults = Objects.requireNonNull(defaults, "defaults");
        this.status = Objects.requireNonNull(status, "status");
        this.onChange = Objects.requireNonNull(onChange, "onChange");
    }

    /** Whether the limits were ever read. */
    boolean read() {
        return limitsReadAt != null;
    }

    /** The limits that apply to a user: its own, else the defaults. */
    Limits limitsOf(long user) {
        if (limitsReadAt == null) {
            refreshLimits();
        }
        return own.getOrDefault(user, defaults);
    }

    /** A user's limits as the store has them now, for the operator. */
    Budgets.UserLimits limits(long user) {
        try {
            return store.limitsOf(user).map(limits -> new Budgets.UserLimits(user, limits, true))
                    .orElseGet(() -> new Budgets.UserLimits(user, defaults, false));
        } catch (BudgetStoreUnavailableException away) {
            throw new BudgetUnavailableException("the budget store is unavailable; try again later", StoreStatus.RETRY_AFTER, away);
        }
    }

    /** Sets a user's own limits: here at once, on every other instance within {@code limitsEvery} and a flush. */
    Budgets.UserLimits setLimits(long user, Limits limits) {
        try {
            store.putLimits(user, limits);
        } catch (BudgetStoreUnavailableException away) {
            throw new BudgetUnavailableException("the budget store is unavailable; try again later", StoreStatus.RETRY_AFTER, away);
        }
        changed(user, limits);
        return new Budgets.UserLimits(user, limits, true);
    }

    /** Puts a user back on the defaults: here at once, on every other instance within {@code limitsEvery} and a flush. */
    Budgets.UserLimits clearLimits(long user) {
        try {
            store.clearLimits(user);
        } catch (BudgetStoreUnavailableException away) {
            throw new BudgetUnavailableException("the budget store is unavailable; try again later", StoreStatus.RETRY_AFTER, away);
        }
        changed(user, null);
        return new Budgets.UserLimits(user, defaults, false);
    }

    /** Reads the limits changed since the last read; the last known ones stay while the store is away. */
    void refreshLimits() {
        synchronized (limitsLock) {
            Instant since = limitsReadAt == null ? null : limitsReadAt.minus(LIMITS_OVERLAP);
            BudgetStore.LimitsChanges changes;
            try {
                changes = store.limitsChangedSince(since);
                status.isBack();
            } catch (BudgetStoreUnavailableException away) {
                status.wentAway(away);
                if (limitsReadAt == null) {
                    throw new BudgetUnavailableException("the users' limits cannot be read: the budget store is unavailable",
                            StoreStatus.RETRY_AFTER, away);
                }
                return;
            }
            changes.limits().forEach(this::changed);
            changes.cleared().forEach(user -> changed(user, null));
            limitsReadAt = changes.readAt();
        }
    }

    /** @param limits null: back on the defaults */
    private void changed(long user, Limits limits) {
        Limits before = limits == null ? own.remove(user) : own.put(user, limits);
        if (limits == null ? before != null : !limits.equals(before)) {
            onChange.accept(user);
        }
    }
}
