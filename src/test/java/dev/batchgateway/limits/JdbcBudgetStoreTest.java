package dev.batchgateway.limits;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.budget.BudgetStore;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.budget.Window;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.jdbc.test.autoconfigure.AutoConfigureTestDatabase;
import org.springframework.boot.jdbc.test.autoconfigure.JdbcTest;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Propagation;
import org.springframework.transaction.annotation.Transactional;

/**
 * The store's statements on a real PostgreSQL: the grant rule, atomic under concurrency, give-backs, operations applied
 * at most once and resolved, holds that expire, limits.
 */
@JdbcTest
@AutoConfigureTestDatabase(replace = AutoConfigureTestDatabase.Replace.NONE)
@Transactional(propagation = Propagation.NOT_SUPPORTED)
@Import(JdbcBudgetStore.class)
class JdbcBudgetStoreTest {

    private static final Instant DAY = Instant.parse("2026-11-24T00:00:00Z");

    @DynamicPropertySource
    static void database(DynamicPropertyRegistry registry) {
        TestDatabase.register(registry);
    }

    @Autowired
    JdbcBudgetStore store;

    @Autowired
    JdbcClient jdbc;

    private final long user = ThreadLocalRandom.current().nextLong(1_000_000, Long.MAX_VALUE);
    private final UUID instance = UUID.randomUUID();
    private long lastOperation;

    @Test
    void aLeaseGetsWhatItWantsWhileHalfOfWhatIsLeftCoversItThenHalfThenItsNeedThenNothing() {
        var day = new BudgetStore.Account(user, Window.DAY, DAY);

        assertThat(lease(day, 100, 10, 30)).isEqualTo(30);   // 100 left: 30 wanted, 50 is half
        assertThat(lease(day, 100, 10, 60)).isEqualTo(35);   // 70 left: half is 35
        assertThat(lease(day, 100, 20, 20)).isEqualTo(20);   // 35 left: half is 17, the need is 20
        assertThat(lease(day, 100, 20, 20)).isZero();        // 15 left: less than the need, nothing
        assertThat(lease(day, 100, 15, 15)).isEqualTo(15);   // exactly the need
        assertThat(lease(day, 100, 1, 1)).isZero();

        assertThat(row(day)).containsExactly(100L, 0L);
    }

    @Test
    void aLeaseOfSeveralWindowsIsOneStatementAndEachWindowIsItsOwnRow() {
        var minute = new BudgetStore.Account(user, Window.MINUTE, Instant.parse("2026-11-24T10:00:00Z"));
        var day = new BudgetStore.Account(user, Window.DAY, DAY);
        var month = new BudgetStore.Account(user, Window.MONTH, Instant.parse("2026-11-01T00:00:00Z"));

        var grants = store.lease(next(), List.of(new BudgetStore.Ask(day, 1000, 40, 100), new BudgetStore.Ask(minute, 5, 1, 3),
                new BudgetStore.Ask(month, 10_000, 40, 100)));

        assertThat(grants).extracting(BudgetStore.Grant::account).containsExactlyInAnyOrder(minute, day, month);
        assertThat(grants).allSatisfy(grant -> assertThat(grant.granted()).isEqualTo(grant.totalGranted()));
        assertThat(grants).filteredOn(grant -> grant.account().equals(minute)).singleElement()
                .satisfies(grant -> assertThat(grant.granted()).isEqualTo(2));
    }

    @Test
    void givingBackLowersWhatIsGrantedAndReportsWhatWasBilled() {
        var day = new BudgetStore.Account(user, Window.DAY, DAY);
        lease(day, 100, 50, 50);

        // 30 unused and 20 billed leave the hold; the 20 are billed
        store.giveBack(next(), List.of(new BudgetStore.GiveBack(day, 50, 20)));
        assertThat(row(day)).containsExactly(20L, 20L);

        // an overdraft (a worker that counted beyond the bound) is charged, past the limit if need be
        store.giveBack(next(), List.of(new BudgetStore.GiveBack(day, 0, 90)));
        assertThat(row(day)).containsExactly(110L, 110L);
        assertThat(lease(day, 100, 1, 1)).isZero();
        assertThat(store.consumed(user, Map.of(Window.DAY, DAY, Window.MINUTE, DAY)))
                .containsEntry(Window.DAY, 110L).containsEntry(Window.MINUTE, 0L);
    }

    @Test
    void concurrentLeasesAndGiveBacksNeverGrantBeyondTheLimit() throws Exception {
        // Given one window's budget of 10,000, and 16 threads leasing and giving back at once
        var day = new BudgetStore.Account(user, Window.DAY, DAY);
        var other = new BudgetStore.Account(user, Window.MONTH, Instant.parse("2026-11-01T00:00:00Z"));
        List<Callable<long[]>> leasers = new ArrayList<>();
        for (int t = 0; t < 16; t++) {
            leasers.add(() -> {
                var instance = UUID.randomUUID(); // each thread an instance, with its own operations
                long operation = 0;
                long held = 0;
                long billed = 0;
                var random = ThreadLocalRandom.current();
                for (int i = 0; i < 100; i++) {
                    if (held > 0 && random.nextBoolean()) {
                        long spent = random.nextLong(held + 1);
                        long back = random.nextLong(held - spent + 1);
                        // both rows in one statement, in an order that differs between threads: no deadlock
                        var op = new BudgetStore.Operation(instance, ++operation, Duration.ofMinutes(5));
                        store.giveBack(op, random.nextBoolean()
                                ? List.of(new BudgetStore.GiveBack(day, back + spent, spent), new BudgetStore.GiveBack(other, 0, 0))
                                : List.of(new BudgetStore.GiveBack(other, 0, 0), new BudgetStore.GiveBack(day, back + spent, spent)));
                        held -= spent + back;
                        billed += spent;
                    } else {
                        long need = random.nextLong(1, 500);
                        var op = new BudgetStore.Operation(instance, ++operation, Duration.ofMinutes(5));
                        var grants = store.lease(op, List.of(new BudgetStore.Ask(other, 1_000_000, 1, 1),
                                new BudgetStore.Ask(day, 10_000, need, need + random.nextLong(1000))));
                        held += grants.stream().filter(g -> g.account().equals(day)).mapToLong(BudgetStore.Grant::granted).sum();
                        assertThat(grants).allSatisfy(grant -> assertThat(grant.totalGranted()).isLessThanOrEqualTo(
                                grant.account().equals(day) ? 10_000 : 1_000_000));
                    }
                }
                return new long[] {held, billed};
            });
        }

        // When they have all finished
        long held = 0;
        long billed = 0;
        try (var threads = Executors.newFixedThreadPool(16)) {
            for (Future<long[]> result : threads.invokeAll(leasers)) {
                held += result.get()[0];
                billed += result.get()[1];
            }
        }

        // Then the row holds exactly what they hold and billed, never more than the limit
        assertThat(row(day)).containsExactly(held + billed, billed);
        assertThat(held + billed).isLessThanOrEqualTo(10_000);
    }

    @Test
    void limitsAreReplacedReadBackAndFoundWhenChanged() {
        var before = store.limitsChangedSince(null).readAt();
        assertThat(store.limitsOf(user)).isEmpty();

        store.putLimits(user, new Limits(100L, null, 60L));
        store.putLimits(user, new Limits(200L, null, null));

        assertThat(store.limitsOf(user)).contains(new Limits(200L, null, null));
        var changes = store.limitsChangedSince(before);
        assertThat(changes.limits()).containsEntry(user, new Limits(200L, null, null));
        assertThat(changes.readAt()).isAfter(before);
        assertThat(store.limitsChangedSince(changes.readAt().plusSeconds(1)).limits()).doesNotContainKey(user);
    }

    @Test
    void windowsLongOverAreForgotten() {
        var old = new BudgetStore.Account(user, Window.MINUTE, Instant.parse("2026-11-24T08:00:00Z"));
        var recent = new BudgetStore.Account(user, Window.MINUTE, Instant.parse("2026-11-24T09:30:00Z"));
        lease(old, 10, 1, 1);
        lease(recent, 10, 1, 1);

        store.forget(Map.of(Window.MINUTE, Instant.parse("2026-11-24T09:00:00Z")));

        assertThat(jdbc.sql("SELECT count(*) FROM budget_window WHERE user_id = ?").param(user).query(Long.class).single())
                .isEqualTo(1);
    }

    private BudgetStore.Operation next() {
        return new BudgetStore.Operation(instance, ++lastOperation, Duration.ofMinutes(5));
    }

    private long lease(BudgetStore.Account account, long limit, long need, long want) {
        return store.lease(next(), List.of(new BudgetStore.Ask(account, limit, need, want))).getFirst().granted();
    }

    /** What is taken in a window (billed and held by unexpired holds), and what is billed. */
    private List<Long> row(BudgetStore.Account account) {
        return jdbc.sql("""
                        SELECT w.consumed + coalesce((SELECT sum(h.held) FROM budget_hold h
                                                      WHERE (h.user_id, h.kind, h.window_start) = (w.user_id, w.kind, w.window_start)
                                                            AND h.expires_at > clock_timestamp()), 0),
                               w.consumed
                        FROM budget_window w WHERE w.user_id = ? AND w.kind = ? AND w.window_start = ?""")
                .params(account.user(), account.window().name().toLowerCase(java.util.Locale.ROOT),
                        account.start().atOffset(java.time.ZoneOffset.UTC))
                .query((rs, n) -> List.of(rs.getLong(1), rs.getLong(2)))
                .single();
    }
}
