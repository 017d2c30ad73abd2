package dev.batchgateway.budget;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;

/**
 * Where users' limits and the budgets of their windows are kept, shared by every gateway instance. For each user and
 * window the store keeps {@code consumed}, what the instances reported as billed, and per instance a <b>hold</b>: what
 * the instance took out of the budget and has not given back (free, reserved by its requests in flight, billed and not
 * reported yet), with an expiry the instance renews while alive. What is free is the limit less consumed less every
 * unexpired hold; a lease grants only from that.
 *
 * <p>Leases and give-backs are {@linkplain Operation operations} of one instance, numbered upwards and sent one at a
 * time; the store applies each at most once. One whose outcome the instance did not learn is {@linkplain #resolve
 * resolved}, never sent again.
 *
 * <p>Every method may throw {@link BudgetStoreUnavailableException} when the store cannot be reached; for a lease or a
 * give-back, the operation may then have applied or not.
 */
public interface BudgetStore {

    /** Sets a user's own limits, replacing any before. */
    void putLimits(long user, Limits limits);

    /** Puts a user back on the defaults: its own limits, if any, are forgotten. */
    void clearLimits(long user);

    /** A user's own limits, empty when the user has none (the defaults apply). */
    Optional<Limits> limitsOf(long user);

    /**
     * The users' own limits set at or after {@code since} (every user's when null), the users put back on the defaults
     * since then, and the store's time of reading, to ask from next time.
     */
    LimitsChanges limitsChangedSince(Instant since);

    /**
     * Leases from each window's budget into the instance's hold, all in one atomic round trip, and renews those holds.
     * A window gets at least {@code need} when what is free leaves that much, else nothing; beyond {@code need}, up to
     * {@code want} and at most half of what is free, so that other instances find room too. A window for which the
     * operation was applied or fenced before gets no grant (not in the answer).
     */
    List<Grant> lease(Operation operation, List<Ask> asks);

    /**
     * Gives amounts back, reports billed ones and renews the holds, for many windows in one round trip. A window for
     * which the operation was applied or fenced before is left alone (not in the answer).
     */
    List<Kept> giveBack(Operation operation, List<GiveBack> giveBacks);

    /**
     * Settles the fate of an operation whose answer was lost: from now on it can never apply, and the answer says, per
     * window, whether it had.
     */
    List<Resolution> resolve(Operation operation, List<Account> accounts);

    /** What was reported billed in these windows of the user; zero for a window nobody leased from. */
    Map<Window, Long> consumed(long user, Map<Window, Instant> windowStarts);

    /** Forgets the windows that started before these instants, per kind of window (they are over). */
    void forget(Map<Window, Instant> startedBefore);

    /** The users' own limits read, the users back on the defaults, and when the store read them. */
    record LimitsChanges(Map<Long, Limits> limits, Set<Long> cleared, Instant readAt) {
        public LimitsChanges {
            limits = Map.copyOf(limits);
            cleared = Set.copyOf(cleared);
            Objects.requireNonNull(readAt, "readAt");
        }

        /** Limits read, none cleared. */
        public LimitsChanges(Map<Long, Limits> limits, Instant readAt) {
            this(limits, Set.of(), readAt);
        }
    }

    /** One window of a user: which user, which kind of window, and where it starts. */
    record Account(long user, Window window, Instant start) {
        public Account {
            Objects.requireNonNull(window, "window");
            Objects.requireNonNull(start, "start");
        }
    }

    /**
     * What an instance asks of a window's budget under {@code limit}: at least {@code need}, at most {@code want}.
     */
    record Ask(Account account, long limit, long need, long want) {
        public Ask {
            Objects.requireNonNull(account, "account");
            if (limit < 0 || need < 1 || want < need) {
                throw new IllegalArgumentException("an ask needs 0 <= limit, 1 <= need <= want; was " + limit + ", " + need + ", " + want);
            }
        }
    }

    /**
     * What a lease got: {@code granted} now; {@code totalGranted}, what is taken in the window after it (consumed and
     * every unexpired hold); {@code consumed}; and whether the instance's hold had expired before it ({@code lost}:
     * what it held there before is no longer its own).
     */
    record Grant(Account account, long granted, long totalGranted, long consumed, boolean lost) {
        public Grant {
            Objects.requireNonNull(account, "account");
        }
    }

    /**
     * One instance's operation: its id, the operation's number (each greater than the instance's previous ones), and
     * how long the holds it touches live from when the store applies it.
     */
    record Operation(UUID instance, long number, Duration expiry) {
        public Operation {
            Objects.requireNonNull(instance, "instance");
            if (number < 1 || !expiry.isPositive()) {
                throw new IllegalArgumentException("an operation needs a number from 1 and a positive expiry, was " + number + ", " + expiry);
            }
        }
    }

    /** What a hold keeps after a give-back, and whether it had expired before it ({@code lost}: it was emptied). */
    record Kept(Account account, long held, boolean lost) {
        public Kept {
            Objects.requireNonNull(account, "account");
        }
    }

    /**
     * The fate of an operation in one window: whether it applied; if so, what it granted (a lease) and whether it found
     * the hold expired.
     */
    record Resolution(Account account, boolean applied, long granted, boolean lost) {
        public Resolution {
            Objects.requireNonNull(account, "account");
        }
    }

    /**
     * What an instance gives back to a window's budget: {@code released} leaves its hold (unused amounts and what it
     * reports billed; less when it spent more than it held: a worker that counted beyond its bound), and {@code
     * consumed}, what it reports billed there since its last report, counts as billed. Zero and zero renews the hold.
     */
    record GiveBack(Account account, long released, long consumed) {
        public GiveBack {
            Objects.requireNonNull(account, "account");
            if (consumed < 0) {
                throw new IllegalArgumentException("consumed must not be negative, was " + consumed);
            }
        }
    }
}
