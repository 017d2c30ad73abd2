package dev.batchgateway.budget;

import java.util.List;
import java.util.Map;

/** One user's lease, waiting for its turn with the store; its outcome is written under the user's lock. */
final class PendingLease {
    final UserBudget budget;
    final List<BudgetStore.Ask> asks;
    final long askedAtMillis;
    boolean enough; // guarded by budget.lock
    RuntimeException failure; // guarded by budget.lock

    PendingLease(UserBudget budget, List<BudgetStore.Ask> asks, long askedAtMillis) {
        this.budget = budget;
        this.asks = asks;
        this.askedAtMillis = askedAtMillis;
    }

    /**
     * Adds what was granted to the user's slices, and wakes the requests waiting for it.
     *
     * @param backedUntil until when (ticker) the holds this lease renewed may be reserved from
     */
    void apply(Map<BudgetStore.Account, BudgetStore.Grant> grants, RuntimeException failure, long operation, long sentAt,
            long backedUntil) {
        budget.lock.lock();
        try {
            this.failure = failure;
            boolean all = failure == null;
            for (BudgetStore.Ask ask : asks) {
                BudgetStore.Grant grant = grants.get(ask.account());
                if (grant != null) {
                    Lease lease = budget.lease(ask.account().window(), ask.account().start());
                    if (grant.lost()) {
                        // the store let the hold expire: what was held here is gone, the hold starts again
                        lease = budget.lose(ask.account(), operation);
                    }
                    lease.granted(grant, grant.granted() < ask.want(), askedAtMillis);
                    lease.renewed(backedUntil, sentAt);
                }
                all &= grant != null && grant.granted() >= ask.need();
            }
            enough = all;
            budget.leasing = null;
            budget.leased.signalAll();
        } finally {
            budget.lock.unlock();
        }
    }
}
