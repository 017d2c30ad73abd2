package dev.batchgateway.budget;

import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/** One user's slices on this instance, one per window; everything in it guarded by its lock. */
final class UserBudget {
    private static final System.Logger LOG = System.getLogger(UserBudget.class.getName());

    final long user;
    final ReentrantLock lock = new ReentrantLock();
    final Condition leased = lock.newCondition();
    final Map<BudgetStore.Account, Lease> leases = new HashMap<>();
    /** The latest window of each kind, to find it without a lookup by key. */
    final Map<Window, Lease> current = new EnumMap<>(Window.class);
    boolean retired;
    /** Slices whose holds the store let expire, with requests in flight or billed amounts still to report. */
    final List<Lease> lost = new ArrayList<>();
    /** The lease in flight for this user, if any: one at a time. */
    PendingLease leasing;
    volatile boolean limitsChanged;

    UserBudget(long user) {
        this.user = user;
    }

    /** This user's lease on the window that starts at {@code start}: the current one without allocating. */
    Lease lease(Window window, Instant start) {
        Lease lease = current.get(window);
        if (lease == null || !lease.account.start().equals(start)) {
            lease = leases.computeIfAbsent(new BudgetStore.Account(user, window, start),
                    account -> new Lease(account, window.end(account.start())));
            current.put(window, lease);
        }
        return lease;
    }

    /**
     * The store let this window's hold expire, and operation {@code since} started it again: its slice is replaced
     * by an empty one; the old one only reports what its requests in flight are billed.
     */
    Lease lose(BudgetStore.Account account, long since) {
        Lease old = leases.get(account);
        if (old == null) {
            Lease fresh = lease(account.window(), account.start());
            fresh.holdSince = since;
            return fresh;
        }
        old.lost = true;
        old.free = 0;
        old.unused = 0;
        old.overdraft = 0;
        LOG.log(System.Logger.Level.WARNING, "the budget store let this instance's hold of user " + user + "'s "
                + old.account.window().limitName() + " window expire (cut off from it for too long?): what it held "
                + "there is free for every instance again");
        lost.add(old);
        var fresh = new Lease(old.account, old.end);
        fresh.holdSince = since;
        leases.put(old.account, fresh);
        current.put(old.account.window(), fresh);
        return fresh;
    }
}
