package dev.batchgateway.budget;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Where users' limits and the budgets of their windows are kept, shared by every gateway instance. For each user and
 * window the store keeps {@code granted}, what instances have taken out of the budget and not given back (spent, held
 * by requests in flight, or held unused), and {@code consumed}, what the instances reported as billed. It grants only
 * within the limit: {@code granted} never grows past it by a lease.
 *
 * <p>Every method may throw {@link BudgetStoreUnavailableException} when the store cannot be reached.
 */
public interface BudgetStore {

    /** Sets a user's own limits, replacing any before. */
    void putLimits(long user, Limits limits);

    /** A user's own limits, empty when the user has none (the defaults apply). */
    Optional<Limits> limitsOf(long user);

    /**
     * The users' own limits set at or after {@code since} (every user's when null), and the store's time of reading,
     * to ask from next time.
     */
    LimitsChanges limitsChangedSince(Instant since);

    /**
     * Leases from each window's budget, all in one atomic round trip. A window gets at least {@code need} when its
     * limit leaves that much beside what is granted, else nothing; beyond {@code need}, up to {@code want} and at
     * most half of what is left, so that other instances find room too.
     */
    List<Grant> lease(List<Ask> asks);

    /** Gives unused amounts back and reports billed ones, for many windows in one round trip. */
    void giveBack(List<GiveBack> giveBacks);

    /** What was reported billed in these windows of the user; zero for a window nobody leased from. */
    Map<Window, Long> consumed(long user, Map<Window, Instant> windowStarts);

    /** Forgets the windows that started before these instants, per kind of window (they are over). */
    void forget(Map<Window, Instant> startedBefore);

    /** The users' own limits read, and when the store read them. */
    record LimitsChanges(Map<Long, Limits> limits, Instant readAt) {
        public LimitsChanges {
            limits = Map.copyOf(limits);
            Objects.requireNonNull(readAt, "readAt");
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

    /** What a lease got: {@code granted} now, and the window's totals after it. */
    record Grant(Account account, long granted, long totalGranted, long consumed) {
        public Grant {
            Objects.requireNonNull(account, "account");
        }
    }

    /**
     * What an instance gives back to a window's budget, {@code unused} (negative when it spent more than it held: a
     * worker that counted beyond its bound), and what it reports billed there since its last report.
     */
    record GiveBack(Account account, long unused, long consumed) {
        public GiveBack {
            Objects.requireNonNull(account, "account");
            if (consumed < 0) {
                throw new IllegalArgumentException("consumed must not be negative, was " + consumed);
            }
        }
    }
}
