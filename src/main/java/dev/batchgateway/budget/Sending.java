package dev.batchgateway.budget;

/** What one flush takes out of a slice to give back and report, until the store applies it. */
record Sending(UserBudget budget, Lease lease, long unused, long overdraft, long consumed) {

    /** What leaves the hold: unused and billed amounts, less what was spent beyond it; nothing from a lost slice. */
    long released() {
        return lease.lost ? 0 : unused - overdraft + consumed;
    }
}
