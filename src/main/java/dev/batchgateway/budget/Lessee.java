package dev.batchgateway.budget;

import dev.batchgateway.completion.Ticker;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantLock;

/**
 * This instance as the lessee of the budget store: its id, its numbered operations, and the one whose outcome it does
 * not know yet. Operations go to the store one at a time, so that an operation in doubt (a timeout, a dropped
 * connection: it may have committed or not) is resolved, by asking the store, before the next one is sent; it is never
 * sent again. Until it is resolved nothing else is sent.
 *
 * <p>A hold the store renewed lives {@code expiry} from when the store applied the operation, which is after it was
 * sent; this instance counts on it for {@code expiry - margin} from when it sent it, on its own ticker, so it stops
 * reserving from a slice before the store can consider it expired, whatever the two clocks read.
 */
final class Lessee {

    /** What follows from an operation in doubt once its fate is known. */
    interface Consequence {
        /** It applied (in every window it touched); {@code sentAtNanos} is when it was sent. */
        void applied(BudgetStore.Operation operation, List<BudgetStore.Resolution> resolutions, long sentAtNanos);

        /** It never applied, and never will. */
        void notApplied();
    }

    /**
     * An operation's statement: sends it and applies its answer, before any other operation can be sent (an answer
     * that finds a hold expired must be known before the next operation says what to give back from it).
     */
    @FunctionalInterface
    interface Statement<T> {
        T send(BudgetStore.Operation operation, long sentAtNanos);
    }

    private record InDoubt(BudgetStore.Operation operation, List<BudgetStore.Account> accounts, long sentAtNanos,
            Consequence consequence) {}

    private final BudgetStore store;
    private final UUID id;
    private final Duration expiry;
    private final long backedForNanos;
    private final Ticker ticker;
    private final ReentrantLock turn = new ReentrantLock();
    private long lastNumber; // guarded by turn
    private InDoubt inDoubt; // guarded by turn

    Lessee(BudgetStore store, UUID id, Duration expiry, Ticker ticker) {
        this.store = Objects.requireNonNull(store, "store");
        this.id = Objects.requireNonNull(id, "id");
        this.expiry = Objects.requireNonNull(expiry, "expiry");
        if (expiry.compareTo(Duration.ofSeconds(1)) < 0) {
            throw new IllegalArgumentException("a lease expiry of at least 1 s is needed, was " + expiry);
        }
        this.backedForNanos = expiry.minus(margin(expiry)).toNanos();
        this.ticker = Objects.requireNonNull(ticker, "ticker");
    }

    /** What this instance leaves between its own deadline and the store's: a tenth of the expiry. */
    static Duration margin(Duration expiry) {
        return expiry.dividedBy(10);
    }

    UUID id() {
        return id;
    }

    Duration expiry() {
        return expiry;
    }

    /** Until when (on the ticker) a hold renewed by an operation sent at {@code sentAtNanos} may be reserved from. */
    long backedUntil(long sentAtNanos) {
        return sentAtNanos + backedForNanos;
    }

    long nanoTime() {
        return ticker.nanoTime();
    }

    /**
     * Sends the next operation, once the one in doubt (if any) is resolved. When this throws, either nothing was sent
     * (the operation in doubt could not be resolved: {@code ifInDoubt.notApplied()} has run) or the operation's outcome
     * is unknown: it is in doubt, and {@code ifInDoubt} runs when it is resolved.
     *
     * @param accounts the windows the operation touches, to resolve it
     */
    <T> T send(List<BudgetStore.Account> accounts, Statement<T> statement, Consequence ifInDoubt) {
        turn.lock();
        try {
            try {
                resolveInDoubt();
            } catch (RuntimeException stillInDoubt) {
                ifInDoubt.notApplied();
                throw stillInDoubt;
            }
            var operation = new BudgetStore.Operation(id, ++lastNumber, expiry);
            long sentAt = ticker.nanoTime();
            try {
                return statement.send(operation, sentAt);
            } catch (BudgetStoreUnavailableException notSent) {
                if (notSent.notSent()) {
                    ifInDoubt.notApplied(); // no connection: it never left, nothing to resolve
                } else {
                    inDoubt = new InDoubt(operation, List.copyOf(accounts), sentAt, ifInDoubt);
                }
                throw notSent;
            } catch (RuntimeException unknown) {
                inDoubt = new InDoubt(operation, List.copyOf(accounts), sentAt, ifInDoubt);
                throw unknown;
            }
        } finally {
            turn.unlock();
        }
    }

    /** Resolves the operation in doubt, if any; false when the store could not say (it stays in doubt). */
    boolean resolve() {
        turn.lock();
        try {
            resolveInDoubt();
            return true;
        } catch (BudgetStoreUnavailableException away) {
            return false;
        } finally {
            turn.unlock();
        }
    }

    /** Whether an operation's fate is unknown. */
    boolean inDoubt() {
        turn.lock();
        try {
            return inDoubt != null;
        } finally {
            turn.unlock();
        }
    }

    private void resolveInDoubt() {
        InDoubt doubt = inDoubt;
        if (doubt == null) {
            return;
        }
        List<BudgetStore.Resolution> resolutions = store.resolve(doubt.operation(), doubt.accounts());
        inDoubt = null;
        // one statement: it applied in every window it touched, or in none
        if (resolutions.stream().anyMatch(BudgetStore.Resolution::applied)) {
            doubt.consequence().applied(doubt.operation(), resolutions, doubt.sentAtNanos());
        } else {
            doubt.consequence().notApplied();
        }
    }
}
