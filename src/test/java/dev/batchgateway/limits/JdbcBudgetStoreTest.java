package dev.batchgateway.limits;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.TestDatabase;
import dev.batchgateway.budget.BudgetStore;
import dev.batchgateway.budget.BudgetStoreUnavailableException;
import dev.batchgateway.budget.BudgetUnavailableException;
import dev.batchgateway.budget.Budgets;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.TokenUsage;
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
import java.util.concurrent.atomic.AtomicReference;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.jdbc.test.autoconfigure.AutoConfigureTestDatabase;
import org.springframework.boot.jdbc.test.autoconfigure.JdbcTest;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.jdbc.core.JdbcTemplate;
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
class JdbcBudgetStoreTest {

    private static final Instant DAY = Instant.parse("2026-11-24T00:00:00Z");

    /** The store's statements wait this long for their answer here (30 s would make these tests slow). */
    private static final Duration STATEMENT_TIMEOUT = Duration.ofSeconds(2);

    @DynamicPropertySource
    static void database(DynamicPropertyRegistry registry) {
        TestDatabase.register(registry);
    }

    @TestConfiguration
    static class Store {
        @Bean
        JdbcBudgetStore jdbcBudgetStore(JdbcClient jdbc, JdbcTemplate template) {
            return new JdbcBudgetStore(jdbc, template, STATEMENT_TIMEOUT);
        }
    }

    @Autowired
    DataSource dataSource;

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
    void anOperationAppliesOnceAndItsFateCanBeReadBack() {
        // Given a lease applied
        var day = new BudgetStore.Account(user, Window.DAY, DAY);
        var lease = next();
        assertThat(store.lease(lease, List.of(new BudgetStore.Ask(day, 100, 10, 30)))).singleElement()
                .satisfies(grant -> assertThat(grant.granted()).isEqualTo(30));

        // When the same operation comes again (a statement re-sent), and a give-back with it
        var again = store.lease(lease, List.of(new BudgetStore.Ask(day, 100, 10, 30)));
        var giveBack = next();
        store.giveBack(giveBack, List.of(new BudgetStore.GiveBack(day, 20, 5)));
        store.giveBack(giveBack, List.of(new BudgetStore.GiveBack(day, 20, 5)));

        // Then each applied once, and reading back tells which did, and what the lease granted
        assertThat(again).isEmpty();
        assertThat(row(day)).containsExactly(15L, 5L);
        assertThat(store.resolve(lease, List.of(day))).singleElement().satisfies(resolution -> {
            assertThat(resolution.applied()).isFalse(); // a later operation applied since
        });
        assertThat(store.resolve(giveBack, List.of(day))).singleElement()
                .satisfies(resolution -> assertThat(resolution.applied()).isTrue());
        var unknown = next();
        assertThat(store.resolve(unknown, List.of(day))).singleElement()
                .satisfies(resolution -> assertThat(resolution.applied()).isFalse());
        assertThat(store.lease(unknown, List.of(new BudgetStore.Ask(day, 100, 1, 1))))
                .as("a resolved operation never applies afterwards").isEmpty();
    }

    @Test
    void anOperationStillWaitingForALockWhenItIsResolvedNeverApplies() throws Exception {
        // Given a window whose row another transaction holds locked for longer than the statement timeout
        var day = new BudgetStore.Account(user, Window.DAY, DAY);
        lease(day, 100, 50, 50);
        try (var locker = dataSource.getConnection()) {
            locker.setAutoCommit(false);
            lockWindow(locker, day);

            // When a give-back times out on the gateway's side, and is resolved while it still waits for the lock
            var giveBack = next();
            long started = System.nanoTime();
            assertThatThrownBy(() -> store.giveBack(giveBack, List.of(new BudgetStore.GiveBack(day, 50, 10))))
                    .isInstanceOf(BudgetStoreUnavailableException.class);
            assertWaitedAbout(started, STATEMENT_TIMEOUT);
            var resolution = store.resolve(giveBack, List.of(day));

            // and then the lock goes, so that the statement runs at last
            locker.commit();
            awaitNoBudgetStatementRunning();

            // Then it was not applied, and never is: the hold and what is billed are as before
            assertThat(resolution).singleElement().satisfies(r -> assertThat(r.applied()).isFalse());
            assertThat(row(day)).containsExactly(50L, 0L);
        }
    }

    @Test
    void anExpiredHoldIsFreeForOtherInstancesAndItsOwnerLearnsItLostIt() {
        // Given an instance holding the whole budget of a window, and another one
        var day = new BudgetStore.Account(user, Window.DAY, DAY);
        assertThat(lease(day, 100, 100, 100)).isEqualTo(100);
        var other = UUID.randomUUID();
        assertThat(store.lease(new BudgetStore.Operation(other, 1, Duration.ofMinutes(5)),
                List.of(new BudgetStore.Ask(day, 100, 1, 1)))).singleElement()
                .satisfies(grant -> assertThat(grant.granted()).isZero());

        // When the first stops renewing and its hold expires (its expiry moved to the past: no waiting)
        jdbc.sql("UPDATE budget_hold SET expires_at = clock_timestamp() - interval '1 second' WHERE user_id = ? AND instance_id = ?")
                .params(user, instance).update();

        // Then the other gets what it held, and the first, renewing late, learns that it lost it
        assertThat(store.lease(new BudgetStore.Operation(other, 2, Duration.ofMinutes(5)),
                List.of(new BudgetStore.Ask(day, 100, 60, 60)))).singleElement()
                .satisfies(grant -> assertThat(grant.granted()).isEqualTo(60));
        assertThat(store.giveBack(next(), List.of(new BudgetStore.GiveBack(day, 0, 7)))).singleElement()
                .satisfies(kept -> {
                    assertThat(kept.lost()).isTrue();
                    assertThat(kept.held()).isZero();
                });
        assertThat(row(day)).as("its billed amounts still count").containsExactly(67L, 7L);
    }

    @Test
    void aGiveBackThatTimedOutButCommittedIsNotAppliedAgain() throws Exception {
        // Given an instance holding a slice of a day's budget of 100,000, one request billed 20
        var budgets = budgets();
        var request = request();
        budgets.admit(user, List.of(request));
        budgets.settled(request, new TokenUsage(10, 10));
        var day = new BudgetStore.Account(user, Window.DAY, Window.DAY.start(now.get()));
        long held = budgets.held(user, Window.DAY).orElseThrow().free();
        assertThat(held).isPositive();

        try (var locker = dataSource.getConnection()) {
            locker.setAutoCommit(false);
            lockWindow(locker, day);

            // When its give-back waits for a lock longer than the statement timeout, and the gateway gives up on it
            now.set(now.get().plusSeconds(2)); // the slice is idle
            long started = System.nanoTime();
            budgets.flush();
            assertWaitedAbout(started, STATEMENT_TIMEOUT);

            // and then PostgreSQL commits it anyway, once the lock goes
            locker.commit();
            awaitNoBudgetStatementRunning();
        }
        // and the gateway flushes again
        budgets.flush();
        budgets.flush();

        // Then what was billed counted once, and nothing is held that the instance does not hold
        assertThat(row(day)).as("taken and billed in the window").containsExactly(20L, 20L);
        assertThat(hold(budgets, day)).isZero();
        assertThat(budgets.held(user, Window.DAY)).hasValueSatisfying(h -> assertThat(h.free() + h.reserved()).isZero());
    }

    @Test
    void whileTheReadBackCannotTellEitherNothingIsSentAgainAndOnceItCanTheGiveBackCountsOnce() throws Exception {
        // Given an instance holding a slice, one request billed 20
        var budgets = budgets();
        var request = request();
        budgets.admit(user, List.of(request));
        budgets.settled(request, new TokenUsage(10, 10));
        var day = new BudgetStore.Account(user, Window.DAY, Window.DAY.start(now.get()));

        try (var locker = dataSource.getConnection()) {
            locker.setAutoCommit(false);
            // the instance's hold itself locked: the give-back and its read-back both wait for it
            try (var lock = locker.prepareStatement("SELECT 1 FROM budget_hold WHERE user_id = ? FOR UPDATE")) {
                lock.setLong(1, user);
                assertThat(lock.executeQuery().next()).isTrue();
            }

            // When the give-back times out, and so does the read-back at the next flush
            now.set(now.get().plusSeconds(2));
            budgets.flush();
            budgets.flush();

            // Then nothing was sent again: a single give-back waits, besides the read-back
            assertThat(runningBudgetStatements("budget\\_give\\_back")).as("give-backs waiting for the lock").isEqualTo(1);

            // When the lock goes and PostgreSQL commits what waited, and the instance flushes again
            locker.commit();
            awaitNoBudgetStatementRunning();
        }
        budgets.flush();
        budgets.flush();

        // Then the give-back counted once, and nothing is held that the instance does not hold
        assertThat(row(day)).containsExactly(20L, 20L);
        assertThat(hold(budgets, day)).isZero();
    }

    @Test
    void aLeaseThatCommittedAfterTheGatewayGaveUpIsFoundAndKeptThenGivenBack() throws Exception {
        // Given a window whose row another transaction holds locked for longer than the statement timeout
        var budgets = budgets();
        var day = new BudgetStore.Account(user, Window.DAY, Window.DAY.start(now.get()));
        try (var locker = dataSource.getConnection()) {
            locker.setAutoCommit(false);
            try (var insert = locker.prepareStatement(
                    "INSERT INTO budget_window (user_id, kind, window_start) VALUES (?, 'day', ?)")) {
                insert.setLong(1, user);
                insert.setObject(2, day.start().atOffset(java.time.ZoneOffset.UTC));
                insert.executeUpdate();
            }

            // When a request needs a lease, which times out on the gateway: the request gets 503
            long started = System.nanoTime();
            assertThatThrownBy(() -> budgets.admit(user, List.of(request()))).isInstanceOf(BudgetUnavailableException.class);
            assertWaitedAbout(started, STATEMENT_TIMEOUT);

            // and PostgreSQL commits the lease anyway, once the lock goes
            locker.commit();
            awaitNoBudgetStatementRunning();
        }
        long granted = hold(budgets, day);
        assertThat(granted).as("the lease committed late").isPositive();

        // Then the gateway, reading back what became of it, holds what it was granted: nothing stranded
        budgets.flush();
        assertThat(budgets.held(user, Window.DAY)).hasValueSatisfying(h -> assertThat(h.free()).isEqualTo(granted));
        var request = request();
        budgets.admit(user, List.of(request));
        budgets.settled(request, new TokenUsage(10, 10));
        assertThat(hold(budgets, day)).as("served from it without another lease").isEqualTo(granted);

        // And gives it back once idle, once
        now.set(now.get().plusSeconds(2));
        budgets.flush();
        budgets.flush();
        assertThat(row(day)).containsExactly(20L, 20L);
        assertThat(hold(budgets, day)).isZero();
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
    void clearedLimitsAreGoneAndFoundAsClearedWhenChangedUntilSetAgain() {
        // Given a user's own limits, read by every instance
        store.putLimits(user, new Limits(100L, null, 60L));
        var before = store.limitsChangedSince(null).readAt();

        // When they are cleared
        store.clearLimits(user);

        // Then the user has none of its own, and a read of the changes says it is back on the defaults
        assertThat(store.limitsOf(user)).isEmpty();
        var changes = store.limitsChangedSince(before);
        assertThat(changes.cleared()).contains(user);
        assertThat(changes.limits()).doesNotContainKey(user);

        // And limits set again are its own again, no longer cleared
        store.putLimits(user, new Limits(5L, null, null));
        var again = store.limitsChangedSince(changes.readAt());
        assertThat(again.limits()).containsEntry(user, new Limits(5L, null, null));
        assertThat(again.cleared()).doesNotContain(user);
        assertThat(store.limitsOf(user)).contains(new Limits(5L, null, null));
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

    private final AtomicReference<Instant> now = new AtomicReference<>(Instant.parse("2026-11-24T10:00:00Z"));

    /** An instance over this store with a day's budget of 100,000, on a clock that moves when told. */
    private Budgets budgets() {
        return new Budgets(store, new Limits(100_000L, null, null), now::get, Ticker.system(), Budgets.Timing.DEFAULT,
                Duration.ofSeconds(30));
    }

    private CompletionRequest request() {
        return new CompletionRequest(UUID.randomUUID(), user, "hello", new GenerationParameters(10));
    }

    /** What an instance's hold keeps in a window, as PostgreSQL has it. */
    private long hold(Budgets budgets, BudgetStore.Account account) {
        return jdbc.sql("SELECT coalesce(sum(held), 0) FROM budget_hold WHERE user_id = ? AND kind = ? AND window_start = ?")
                .params(account.user(), account.window().name().toLowerCase(java.util.Locale.ROOT),
                        account.start().atOffset(java.time.ZoneOffset.UTC))
                .query(Long.class).single();
    }

    private static void lockWindow(java.sql.Connection locker, BudgetStore.Account account) throws java.sql.SQLException {
        try (var lock = locker.prepareStatement(
                "SELECT 1 FROM budget_window WHERE user_id = ? AND kind = ? AND window_start = ? FOR UPDATE")) {
            lock.setLong(1, account.user());
            lock.setString(2, account.window().name().toLowerCase(java.util.Locale.ROOT));
            lock.setObject(3, account.start().atOffset(java.time.ZoneOffset.UTC));
            assertThat(lock.executeQuery().next()).as("the window's row exists").isTrue();
        }
    }

    private long runningBudgetStatements(String function) {
        return jdbc.sql("""
                        SELECT count(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
                              AND query LIKE '%' || ? || '(%'""")
                .param(function).query(Long.class).single();
    }

    /** Waits (up to a generous 20 s) until no lease, give-back or resolution runs in the database any more. */
    private void awaitNoBudgetStatementRunning() throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (jdbc.sql("""
                        SELECT count(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
                              AND query LIKE '%budget\\_%(%'""")
                .query(Long.class).single() > 0) {
            assertThat(System.nanoTime()).as("a budget statement still runs after 20 s").isLessThan(deadline);
            Thread.sleep(10);
        }
    }

    private static void assertWaitedAbout(long startedNanos, Duration timeout) {
        Duration waited = Duration.ofNanos(System.nanoTime() - startedNanos);
        assertThat(waited).as("waited %d ms for a statement that times out after %d ms", waited.toMillis(), timeout.toMillis())
                .isBetween(timeout.minusMillis(100), timeout.plusSeconds(15));
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
