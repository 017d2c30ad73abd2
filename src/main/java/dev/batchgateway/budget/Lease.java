package dev.batchgateway.budget;

import java.time.Instant;

/**
 * This instance's part of one window's budget (a slice). Of what the store granted it and it has not given back,
 * {@code free} is ready for reservations, {@code reserved} held by requests in flight, {@code unused} due to go back;
 * {@code consumed} is what requests settled without a charge in their usage row were billed, to report with the next
 * give-back (what usage rows charged left the store's hold with them).
 */
final class Lease {
    private static final System.Logger LOG = System.getLogger(Lease.class.getName());

    final BudgetStore.Account account;
    final Instant end;
    long free;
    long reserved;
    long unused;
    long overdraft;
    long consumed;
    long leasedAt;
    long lastReserved;
    long demandSinceLease;
    long demandBefore;
    long billedAtStore;
    long grantedAtStore;
    boolean tight;
    long reportedAt;
    /** Whether the store ever renewed this slice's hold, and until when (ticker) it may be reserved from. */
    boolean backed;
    long backedUntil;
    /** When (ticker) the operation that last renewed the hold was sent. */
    long renewedAt;
    /** The operation that started the store's hold this slice is part of (0: the first hold of the window). */
    long holdSince;
    /**
     * The store let the hold expire (others may have leased it): nothing here is free any more; requests in flight
     * settle into what is billed, reported without lowering the hold.
     */
    boolean lost;

    Lease(BudgetStore.Account account, Instant end) {
        this.account = account;
        this.end = end;
    }

    void reserve(long amount, long nowMillis) {
        free -= amount;
        reserved += amount;
        demandSinceLease += amount;
        lastReserved = nowMillis;
    }

    /**
     * A request that reserved {@code amount} here spent {@code spent}: reported with the next give-back, or already
     * {@code charged} to the store with its usage row (then it left the store's hold there).
     */
    void settle(long amount, long spent, boolean charged) {
        reserved -= amount;
        if (charged) {
            billedAtStore += spent;
        } else {
            consumed += spent;
        }
        if (lost) {
            return; // nothing here is held any more: what was not spent is nobody's to free
        }
        if (spent <= amount) {
            free += amount - spent;
            return;
        }
        long beyond = spent - amount;
        long covered = Math.min(beyond, free);
        free -= covered;
        overdraft += beyond - covered;
        LOG.log(System.Logger.Level.WARNING, "the worker counted " + spent + " " + (account.window().countsRequests()
                ? "requests" : "tokens") + " for a request of user " + account.user() + " that reserved " + amount
                + " in its " + account.window().limitName() + " window: the excess is charged to the budget all the same");
    }

    boolean backedAt(long nowNanos) {
        return backed && nowNanos - backedUntil < 0;
    }

    void renewed(long backedUntil, long sentAtNanos) {
        if (!backed || backedUntil - this.backedUntil > 0) {
            this.backedUntil = backedUntil;
            this.renewedAt = sentAtNanos;
        }
        backed = true;
    }

    /** What a give-back that never applied took from this slice is its own again (billed amounts only, once lost). */
    void takeBack(Sending sent) {
        consumed += sent.consumed();
        if (!lost) {
            unused += sent.unused();
            overdraft += sent.overdraft();
        }
        reportedAt = 0; // reported at the next flush that reaches the store
    }

    /** What went to be given back but has not left yet is still this instance's: taken back when needed. */
    void reclaimUnused(long needed) {
        if (free < needed && unused > 0) {
            free += unused;
            unused = 0;
        }
    }

    void giveUpFree() {
        unused += free;
        free = 0;
    }

    /** @param tight whether the store gave less than asked: its budget is nearly spent, slices go back sooner */
    void granted(BudgetStore.Grant grant, boolean tight, long nowMillis) {
        this.tight = tight;
        free += grant.granted();
        billedAtStore = grant.consumed();
        grantedAtStore = grant.totalGranted();
        if (grant.granted() > 0) {
            leasedAt = nowMillis;
            demandBefore = demandSinceLease;
            demandSinceLease = 0;
        }
    }

    long recentDemand() {
        return Math.max(demandBefore, demandSinceLease);
    }

    /** What the user was billed in this window as far as this instance knows: reported by all, and its own since. */
    long billedAsKnown() {
        return billedAtStore + consumed;
    }
}
