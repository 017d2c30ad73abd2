package dev.batchgateway.budget;

import java.time.InstantSource;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Sends the leases requests wait for: those of all users waiting at the same moment in one statement (at a minute's
 * turn every busy user needs a new minute at once), one statement at a time, on one thread. It applies each grant to
 * the user's slices whether or not a request still waits for it, and a lease whose outcome was in doubt and is found
 * applied later joins the slices too: nothing granted is ever lost.
 */
final class Leaser implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(Leaser.class.getName());
    /** The most windows leased in one statement. */
    private static final int ASKS_PER_LEASE = 1000;

    private final BudgetStore store;
    private final Lessee lessee;
    private final StoreStatus status;
    private final UserBudgets users;
    private final InstantSource clock;
    private final BlockingQueue<PendingLease> leaseQueue = new LinkedBlockingQueue<>();
    private volatile Thread leaser;

    Leaser(BudgetStore store, Lessee lessee, StoreStatus status, UserBudgets users, InstantSource clock) {
        this.store = Objects.requireNonNull(store, "store");
        this.lessee = Objects.requireNonNull(lessee, "lessee");
        this.status = Objects.requireNonNull(status, "status");
        this.users = Objects.requireNonNull(users, "users");
        this.clock = Objects.requireNonNull(clock, "clock");
    }

    /** Queues a lease; its outcome is written into it, under its user's lock, when the store answers. */
    void lease(PendingLease pending) {
        startLeaser();
        leaseQueue.add(pending);
    }

    @Override
    public void close() {
        if (leaser != null) {
            leaser.interrupt();
        }
    }

    private void startLeaser() {
        if (leaser == null) {
            synchronized (leaseQueue) {
                if (leaser == null) {
                    leaser = Thread.ofVirtual().name("budget-leaser").start(this::leaseInTurns);
                }
            }
        }
    }

    /** Sends the leases waiting, up to {@link #ASKS_PER_LEASE} windows, in one statement; then the next ones. */
    private void leaseInTurns() {
        while (true) {
            List<PendingLease> turn = new ArrayList<>();
            try {
                turn.add(leaseQueue.take());
            } catch (InterruptedException stop) {
                return;
            }
            int windows = turn.getFirst().asks.size();
            PendingLease next;
            while (windows < ASKS_PER_LEASE && (next = leaseQueue.poll()) != null) {
                turn.add(next);
                windows += next.asks.size();
            }
            List<BudgetStore.Ask> asks = new ArrayList<>(windows);
            turn.forEach(pending -> asks.addAll(pending.asks));
            try {
                lessee.send(asks.stream().map(BudgetStore.Ask::account).toList(), (operation, sentAt) -> {
                    Map<BudgetStore.Account, BudgetStore.Grant> byAccount = new HashMap<>();
                    store.lease(operation, asks).forEach(grant -> byAccount.put(grant.account(), grant));
                    applyAll(turn, byAccount, null, operation.number(), sentAt);
                    return null;
                }, new Lessee.Consequence() {
                    @Override
                    public void applied(BudgetStore.Operation operation, List<BudgetStore.Resolution> resolutions,
                            long sentAtNanos) {
                        // granted after the requests stopped waiting: kept, and given back when idle
                        resolutions.forEach(resolution -> grantedLate(resolution, operation, sentAtNanos));
                    }

                    @Override
                    public void notApplied() {
                        // nothing was granted
                    }
                });
                status.isBack();
            } catch (BudgetStoreUnavailableException away) {
                status.wentAway(away);
                applyAll(turn, Map.of(), away, 0, 0);
            } catch (RuntimeException unexpected) {
                LOG.log(System.Logger.Level.WARNING, "leasing budget failed", unexpected);
                applyAll(turn, Map.of(), unexpected, 0, 0);
            }
        }
    }

    private void applyAll(List<PendingLease> turn, Map<BudgetStore.Account, BudgetStore.Grant> grants, RuntimeException failure,
            long operation, long sentAt) {
        for (PendingLease pending : turn) {
            try {
                pending.apply(grants, failure, operation, sentAt, lessee.backedUntil(sentAt));
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "applying a lease failed", e); // the leaser must go on
            }
        }
    }

    /** A lease found applied when its outcome was resolved: its grant joins this instance's slice. */
    private void grantedLate(BudgetStore.Resolution resolution, BudgetStore.Operation operation, long sentAtNanos) {
        BudgetStore.Account account = resolution.account();
        UserBudget budget = users.lock(account.user());
        try {
            Lease lease = budget.lease(account.window(), account.start());
            if (resolution.lost()) {
                lease = budget.lose(account, operation.number());
            }
            lease.free += resolution.granted();
            lease.renewed(lessee.backedUntil(sentAtNanos), sentAtNanos);
            if (resolution.granted() > 0) {
                // kept for the requests that got 503 and try again, then given back when idle like any slice
                lease.leasedAt = lease.lastReserved = clock.millis();
            }
        } finally {
            budget.lock.unlock();
        }
    }
}
