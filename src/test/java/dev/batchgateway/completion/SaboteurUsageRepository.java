package dev.batchgateway.completion;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * A store that fails: recoverably for its first {@code outages} calls (or for ever), and permanently for rows it
 * refuses; other rows it keeps like a {@link SpyUsageRepository}.
 */
public class SaboteurUsageRepository extends SpyUsageRepository {

    private final AtomicInteger outagesLeft;
    private final Predicate<UsageRecord> refused;
    public final AtomicInteger failures = new AtomicInteger();

    public SaboteurUsageRepository(int outages, Predicate<UsageRecord> refused) {
        this.outagesLeft = new AtomicInteger(outages);
        this.refused = refused;
    }

    public static SaboteurUsageRepository awayFor(int calls) {
        return new SaboteurUsageRepository(calls, row -> false);
    }

    public static SaboteurUsageRepository awayForever() {
        return awayFor(Integer.MAX_VALUE);
    }

    public static SaboteurUsageRepository refusing(Predicate<UsageRecord> refused) {
        return new SaboteurUsageRepository(0, refused);
    }

    /** From now on, away for the next {@code calls} calls. */
    public void goAwayFor(int calls) {
        outagesLeft.set(calls);
    }

    /** From now on, keeps rows again (those it refuses aside). */
    public void comeBack() {
        goAwayFor(0);
    }

    @Override
    public void record(List<UsageRecord> rows) {
        if (outagesLeft.getAndUpdate(left -> left == Integer.MAX_VALUE ? left : Math.max(0, left - 1)) > 0) {
            failures.incrementAndGet();
            throw new UsageWriteException.Recoverable("connection refused", null);
        }
        if (rows.stream().anyMatch(refused)) {
            failures.incrementAndGet();
            throw new UsageWriteException.Permanent("violates check constraint", null);
        }
        super.record(rows);
    }
}
