package dev.batchgateway.budget;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.Admission;
import dev.batchgateway.completion.BudgetCharge;
import dev.batchgateway.completion.ChatTemplate;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.Payer;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.TokenBound;
import dev.batchgateway.completion.TokenUsage;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** Reservations, leases and refusals of one or two instances on a store in memory, on a clock that moves when told. */
class BudgetsTest {

    private static final long USER = 7;
    /** 10:00:00 UTC: the day ends in 14 hours, the minute in 60 seconds. */
    private static final Instant TEN = Instant.parse("2026-11-24T10:00:00Z");

    private final MemoryBudgetStore store = new MemoryBudgetStore();
    private final ManualClock clock = new ManualClock(TEN);

    @Test
    void aRequestReservesItsPromptsBytesPlusAnAllowancePlusMaxTokens() {
        // "héllo" is 6 UTF-8 bytes, the emoji 4 (two chars), the CJK character 3
        assertThat(TokenBound.of(request("héllo", 10))).isEqualTo(6 + TokenBound.TEXT_ALLOWANCE + 10);
        assertThat(TokenBound.of(request("😀中", 1))).isEqualTo(7 + TokenBound.TEXT_ALLOWANCE + 1);
        // a chat: its model's template once, and per message beside the message's role and text
        var messages = List.of(new Prompt.Message("system", "be brief"), new Prompt.Message("user", "hi"));
        var chat = new CompletionRequest(UUID.randomUUID(), USER, new Prompt.Chat(messages, new ChatTemplate(20, 5)),
                new GenerationParameters(5));
        assertThat(TokenBound.of(chat)).isEqualTo(20 + ("system".length() + "be brief".length() + 5)
                + ("user".length() + "hi".length() + 5) + 5);
        // a template not measured: the widest allowance
        var unmeasured = new CompletionRequest(UUID.randomUUID(), USER, new Prompt.Chat(messages), new GenerationParameters(5));
        assertThat(TokenBound.of(unmeasured)).isEqualTo(ChatTemplate.UNMEASURED.perConversation()
                + 2L * ChatTemplate.UNMEASURED.perMessage() + "systembe briefuserhi".length() + 5);
        assertThat(TokenBound.parts(chat)).isEqualTo(new TokenBound.Parts("systembe briefuserhi".length(), 20 + 2 * 5, 5));
    }

    @Test
    void aKeysOwnLimitsAreABudgetBesideItsUsersAndARefusalOfEitherAdmitsNothing() {
        // Given a user with 1,000 tokens a day, and a key of the user's with 100 of its own
        var budgets = budgets(new Limits(1000L, null, null));
        long key = Budgets.keyAccount(UUID.randomUUID());
        var keyLimits = new Limits(100L, null, null);

        // When the key's call fits both, it reserves in both, and its charges name both accounts
        var fits = request("hello", 50); // 5 + 16 + 50 = 71
        budgets.admit(USER, key, keyLimits, List.of(fits));
        assertThat(budgets.charges(fits, new TokenUsage(5, 10))).extracting(BudgetCharge::account, BudgetCharge::amount)
                .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple(USER, 15L), org.assertj.core.groups.Tuple.tuple(key, 15L));
        budgets.settled(fits, new TokenUsage(5, 10));

        // Then a call beyond what remains of the key's limit is refused as the key's, leaving the user's budget whole
        var beyondTheKey = request("hello", 70);
        assertThatThrownBy(() -> budgets.admit(USER, key, keyLimits, List.of(beyondTheKey)))
                .isInstanceOfSatisfying(LimitExceededException.class, refused -> {
                    assertThat(refused.scope()).isEqualTo("key");
                    assertThat(refused.getMessage()).startsWith("this key's tokens_per_day is 100");
                });
        assertThat(budgets.held(USER, Window.DAY)).hasValueSatisfying(held -> assertThat(held.reserved()).isZero());

        // And the same call through the user's other key, which has no limits of its own, is admitted
        assertThatCode(() -> budgets.admit(USER, List.of(beyondTheKey))).doesNotThrowAnyException();
        assertThat(budgets.held(USER, Window.DAY)).hasValueSatisfying(held -> assertThat(held.reserved()).isEqualTo(91));
    }

    @Test
    void asTheCallsAdmissionAPayersKeyWithLimitsOfItsOwnReservesInBothBudgetsAndAReleaseFreesBoth() {
        // Given a user with 1,000 tokens a day, and a key of the user's with 100 of its own, as the domain's payer
        Admission admission = budgets(new Limits(1000L, null, null));
        var budgets = (Budgets) admission;
        UUID keyId = UUID.randomUUID();
        var payer = new Payer.LimitedKey(USER, keyId, 100L, null, null);

        // When a call of the key's fits both, it reserves in both: its charges name the user's and the key's account
        var fits = request("hello", 50); // 5 + 16 + 50 = 71
        admission.admit(payer, List.of(fits));
        assertThat(budgets.charges(fits, new TokenUsage(5, 10))).extracting(BudgetCharge::account)
                .containsExactlyInAnyOrder(USER, Budgets.keyAccount(keyId));

        // And released (the scheduler did not take it), it holds nothing in either
        admission.release(fits);
        assertThat(budgets.held(USER, Window.DAY)).hasValueSatisfying(held -> assertThat(held.reserved()).isZero());
        assertThat(budgets.held(Budgets.keyAccount(keyId), Window.DAY)).hasValueSatisfying(held -> assertThat(held.reserved()).isZero());

        // Then a call beyond the key's limit is refused as the key's, and the same call as the user's alone is admitted
        var beyondTheKey = request("hello", 90); // 111
        assertThatThrownBy(() -> admission.admit(payer, List.of(beyondTheKey)))
                .isInstanceOfSatisfying(LimitExceededException.class, refused -> assertThat(refused.scope()).isEqualTo("key"));
        assertThatCode(() -> admission.admit(new Payer.User(USER), List.of(beyondTheKey))).doesNotThrowAnyException();
        assertThat(budgets.held(USER, Window.DAY)).hasValueSatisfying(held -> assertThat(held.reserved()).isEqualTo(111));
    }

    @Test
    void anUnlimitedUserCostsNoRoundTrip() {
        var budgets = budgets(Limits.NONE);

        for (int i = 0; i < 100; i++) {
            var request = request("hello", 10);
            budgets.admit(USER, List.of(request));
            budgets.settled(request, new TokenUsage(1, 1));
        }

        assertThat(store.leases).hasValue(0);
    }

    @Test
    void requestsAreAdmittedWhileBilledPlusReservedFitsAndRefusedBeyondNamingTheLimit() {
        // Given a day's budget of 100 tokens, and requests that reserve 5 + 16 + 10 = 31 each
        var budgets = budgets(new Limits(100L, null, null));
        List<CompletionRequest> admitted = new ArrayList<>();

        // When three are admitted and in flight (93 reserved)
        for (int i = 0; i < 3; i++) {
            var request = request("hello", 10);
            budgets.admit(USER, List.of(request));
            admitted.add(request);
        }

        // Then a fourth does not fit beside them: refused, naming the day's limit
        var refused = assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 10))));
        refused.isInstanceOfSatisfying(LimitExceededException.class, e -> {
            assertThat(e.window()).isEqualTo(Window.DAY);
            assertThat(e.limit()).isEqualTo(100);
            assertThat(e.remaining()).as("free now: 100 less the 3 x 31 reserved").isEqualTo(7);
            assertThat(e.requested()).isEqualTo(31);
            assertThat(e.resetsAt()).isEqualTo(Instant.parse("2026-11-25T00:00:00Z"));
            assertThat(e.retryAfter()).as("in flight, back shortly").isLessThanOrEqualTo(Duration.ofSeconds(2));
            assertThat(e.getMessage()).contains("tokens_per_day is 100", "held by requests in flight",
                    "this request reserves 31 tokens: its prompt's 5 UTF-8 bytes (at most a token each) + 16 allowed for "
                            + "special tokens and any chat template + max_tokens 10",
                    "no max_tokens would fit beside this prompt");
        });

        // When they are served for 2 tokens each
        admitted.forEach(request -> budgets.settled(request, new TokenUsage(1, 1)));

        // Then the rest of their reservations is free again: 94 left, room for three more, not four
        for (int i = 0; i < 3; i++) {
            budgets.admit(USER, List.of(request("hello", 10)));
        }
        assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 10))))
                .isInstanceOf(LimitExceededException.class);
    }

    @Test
    void whenTheWindowHasNoRoomLeftRetryAfterIsItsEnd() {
        // Given a day's budget that is spent but for 20 tokens
        var budgets = budgets(new Limits(100L, null, null));
        var big = request("x".repeat(54), 10); // 54 + 16 + 10 = 80
        budgets.admit(USER, List.of(big));
        budgets.settled(big, new TokenUsage(70, 10));

        // When a request that may cost 31 asks
        var refused = assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 10))));

        // Then it must wait for tomorrow: 14 hours
        refused.isInstanceOfSatisfying(LimitExceededException.class, e -> {
            assertThat(e.remaining()).isEqualTo(20);
            assertThat(e.retryAfter()).isEqualTo(Duration.ofHours(14));
            assertThat(e.getMessage()).contains("20 tokens remain until 2026-11-25T00:00:00Z", "reserves 31 tokens",
                    "no max_tokens would fit beside this prompt; shorten it, or try again after 2026-11-25T00:00:00Z");
        });

        // And a smaller one fits
        assertThatCode(() -> budgets.admit(USER, List.of(request("hi", 2)))).doesNotThrowAnyException();
    }

    @Test
    void aRefusalSaysWhatTheRequestReservedOfWhatAndWhichMaxTokensWouldFit() {
        // Given a day's budget of 100 tokens, 60 of them billed
        var budgets = budgets(new Limits(100L, null, null));
        var big = request("x".repeat(34), 10); // 34 + 16 + 10 = 60
        budgets.admit(USER, List.of(big));
        budgets.settled(big, new TokenUsage(34, 26));

        // When a request reserving 5 + 16 + 30 = 51 asks, beyond the 40 left
        var refused = assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 30))));

        // Then the refusal names its parts and what would fit: 40 - (5 + 16) = 19
        refused.isInstanceOfSatisfying(LimitExceededException.class, e -> {
            assertThat(e.reserved()).isEqualTo(new TokenBound.Parts(5, 16, 30));
            assertThat(e.getMessage()).isEqualTo("tokens_per_day is 100: 40 tokens remain until 2026-11-25T00:00:00Z; "
                    + "this request reserves 51 tokens: its prompt's 5 UTF-8 bytes (at most a token each) + 16 allowed for "
                    + "special tokens and any chat template + max_tokens 30: max_tokens ≤ 19 would fit, or try again after "
                    + "2026-11-25T00:00:00Z");
        });
        // And what it says would fit does, and one more token does not
        assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 20)))).isInstanceOf(LimitExceededException.class);
        assertThatCode(() -> budgets.admit(USER, List.of(request("hello", 19)))).doesNotThrowAnyException();
    }

    @Test
    void aRefusalOfSeveralPromptsSaysWhichMaxTokensWouldFitEachOfThem() {
        // Given a day's budget of 100 tokens
        var budgets = budgets(new Limits(100L, null, null));

        // When one call of three prompts reserving 5 + 16 + 20 = 41 each (123) asks
        var refused = assertThatThrownBy(() -> budgets.admit(USER,
                List.of(request("hello", 20), request("hello", 20), request("hello", 20))));

        // Then (100 - 3 x 21) / 3 = 12 would fit each; the whole limit is what remains
        refused.isInstanceOfSatisfying(LimitExceededException.class, e -> assertThat(e.getMessage())
                .contains("its prompts' 15 UTF-8 bytes", "+ 48 allowed", "max_tokens 20 for each of its 3 prompts",
                        "max_tokens ≤ 12 would fit for each of its 3 prompts"));
        assertThatCode(() -> budgets.admit(USER, List.of(request("hello", 12), request("hello", 12), request("hello", 12))))
                .doesNotThrowAnyException();
    }

    @Test
    void aRequestLargerThanTheWholeLimitIsRefusedWithoutAskingTheStore() {
        var budgets = budgets(new Limits(10L, null, null));

        assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 10))))
                .isInstanceOfSatisfying(LimitExceededException.class, e -> assertThat(e.remaining()).isEqualTo(10));
        assertThat(store.leases).hasValue(0);
    }

    @Test
    void aReleasedOrUnbilledRequestGivesItsWholeReservationBack() {
        var budgets = budgets(new Limits(31L, null, null));
        var first = request("hello", 10);
        budgets.admit(USER, List.of(first));
        assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 10)))).isInstanceOf(LimitExceededException.class);

        budgets.release(first);
        var second = request("hello", 10);
        budgets.admit(USER, List.of(second));
        budgets.settled(second, null);

        assertThatCode(() -> budgets.admit(USER, List.of(request("hello", 10)))).doesNotThrowAnyException();
    }

    @Test
    void severalPromptsOfOneCallAreAdmittedAllOrNone() {
        // Given room for two requests a minute
        var budgets = budgets(new Limits(null, null, 2L));
        budgets.admit(USER, List.of(request("one", 1)));

        // When a call of two prompts asks
        assertThatThrownBy(() -> budgets.admit(USER, List.of(request("two", 1), request("three", 1))))
                .isInstanceOfSatisfying(LimitExceededException.class, e -> assertThat(e.requested()).isEqualTo(2));

        // Then none of it was reserved: a single one still fits
        assertThatCode(() -> budgets.admit(USER, List.of(request("four", 1)))).doesNotThrowAnyException();
    }

    @Test
    void requestsPerMinuteCountRequestsAndStartAgainWithTheNextMinute() {
        // Given two requests a minute, both used at 10:00:30
        var budgets = budgets(new Limits(null, null, 2L));
        clock.advance(Duration.ofSeconds(30));
        for (int i = 0; i < 2; i++) {
            var request = request("hello", 200);
            budgets.admit(USER, List.of(request));
            budgets.settled(request, new TokenUsage(1000, 200));
        }

        // Then the third is refused until 10:01
        assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 1))))
                .isInstanceOfSatisfying(LimitExceededException.class, e -> {
                    assertThat(e.window()).isEqualTo(Window.MINUTE);
                    assertThat(e.remaining()).isZero();
                    assertThat(e.retryAfter()).isEqualTo(Duration.ofSeconds(30));
                    assertThat(e.resetsAt()).isEqualTo(Instant.parse("2026-11-24T10:01:00Z"));
                });
        clock.advance(Duration.ofSeconds(30));
        assertThatCode(() -> budgets.admit(USER, List.of(request("hello", 1)))).doesNotThrowAnyException();
    }

    @Test
    void whenSeveralLimitsRefuseTheOneWithRoomLastIsNamed() {
        var budgets = budgets(new Limits(40L, 40L, 1L));
        var spent = request("hello", 10);
        budgets.admit(USER, List.of(spent));
        budgets.settled(spent, new TokenUsage(20, 15));

        assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 10))))
                .isInstanceOfSatisfying(LimitExceededException.class, e -> {
                    assertThat(e.window()).isEqualTo(Window.MONTH);
                    assertThat(e.resetsAt()).isEqualTo(Instant.parse("2026-12-01T00:00:00Z"));
                });
    }

    @Test
    void theHotPathReservesFromItsLeaseAndAsksTheStoreRarely() {
        // Given a large budget
        var budgets = budgets(new Limits(1_000_000_000L, 1_000_000_000L, 1_000_000L));

        // When a thousand requests come and go within a second
        for (int i = 0; i < 1000; i++) {
            var request = request("hello", 10);
            budgets.admit(USER, List.of(request));
            budgets.settled(request, new TokenUsage(3, 5));
            clock.advance(Duration.ofMillis(1));
        }

        // Then the store was asked a handful of times, not once a request
        assertThat(store.leases.get()).isLessThan(20);
    }

    @Test
    void manyUsersLeasingAtOnceShareStatements() throws Exception {
        // Given a store that takes 20 ms a lease, and 300 users whose first requests arrive together (as every busy
        // user needs a new minute when a minute turns)
        store.leaseTime = Duration.ofMillis(20);
        var budgets = budgets(new Limits(1_000_000L, 1_000_000L, 1000L));
        List<java.util.concurrent.Future<?>> admitted = new ArrayList<>();
        try (var callers = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            for (long user = 1; user <= 300; user++) {
                long caller = user;
                admitted.add(callers.submit(() -> budgets.admit(caller,
                        List.of(new CompletionRequest(UUID.randomUUID(), caller, "hello", new GenerationParameters(10))))));
            }
        }

        // Then all are admitted, their windows leased in a few statements rather than 300
        for (var each : admitted) {
            each.get();
        }
        assertThat(store.leases.get()).isLessThan(50);
    }

    @Test
    void anIdleSliceGoesBackSoThatAnotherInstanceCanUseIt() {
        // Given two instances, and a budget the first leased a slice of for one request
        var first = budgets(new Limits(100L, null, null));
        var second = budgets(new Limits(100L, null, null));
        var served = request("hello", 10);
        first.admit(USER, List.of(served));
        first.settled(served, new TokenUsage(1, 1));
        assertThat(first.held(USER, Window.DAY)).get().extracting(Budgets.Held::free).isNotEqualTo(0L);

        // When the slice has been idle for a second and a flush passes
        clock.advance(Duration.ofSeconds(1));
        first.flush();

        // Then the store has it back, billed 2, and the second instance can lease all the rest
        assertThat(store.row(USER, Window.DAY, Window.DAY.start(TEN)).granted).isEqualTo(2);
        assertThat(store.row(USER, Window.DAY, Window.DAY.start(TEN)).consumed).isEqualTo(2);
        for (int i = 0; i < 3; i++) {
            second.admit(USER, List.of(request("hello", 10)));
        }
    }

    @Test
    void anActiveSliceOfATightBudgetGoesBackWhenItIsThreeSecondsOld() {
        // Given a budget the store could not give all that was asked of (tight), and an instance that serves a request
        // every 0.9 s, so that its slice is never idle for a second
        var first = budgets(new Limits(100L, null, null));
        for (int i = 0; i < 4; i++) {
            var request = request("hello", 10);
            first.admit(USER, List.of(request));
            first.settled(request, new TokenUsage(1, 1));
            clock.advance(Duration.ofMillis(900));
            first.flush();
        }

        // Then the slice went back once it was 3 s old
        assertThat(first.held(USER, Window.DAY)).as("given back at 3 s, though in use").get()
                .isEqualTo(new Budgets.Held(0, 0));
        assertThat(store.row(USER, Window.DAY, Window.DAY.start(TEN)).granted).as("only what was billed kept").isEqualTo(8);
    }

    @Test
    void anActiveSliceOfAnAmpleBudgetStaysUntilItIsThirtySecondsOld() {
        // Given an ample budget, and an instance that serves a request every 0.9 s
        var first = budgets(new Limits(1_000_000L, null, null));
        for (int i = 0; i < 40; i++) {
            var request = request("hello", 10);
            first.admit(USER, List.of(request));
            first.settled(request, new TokenUsage(1, 1));
            clock.advance(Duration.ofMillis(900));
            first.flush();
        }

        // Then it kept its slice while in use, reporting what was billed every 3 s, and gave it back at 30 s
        assertThat(store.leases).as("one lease, then one after the first went back").hasValue(2);
        assertThat(store.row(USER, Window.DAY, Window.DAY.start(TEN)).consumed).isGreaterThanOrEqualTo(70);
    }

    @Test
    void whileTheStoreIsAwayAnInstanceServesFromWhatItHoldsAndRefusesBeyondIt() {
        // Given an instance that holds a slice of a user's budget
        var budgets = budgets(new Limits(1000L, null, null));
        var first = request("hello", 10);
        budgets.admit(USER, List.of(first));
        long held = budgets.held(USER, Window.DAY).orElseThrow().free();

        // When the store goes away, flushes fail, and more requests come
        store.away = true;
        budgets.settled(first, new TokenUsage(1, 1));
        clock.advance(Duration.ofSeconds(5));
        budgets.flush();
        int served = 0;
        BudgetUnavailableException refused = null;
        while (refused == null) {
            try {
                budgets.admit(USER, List.of(request("hello", 10)));
                served++;
            } catch (BudgetUnavailableException e) {
                refused = e;
            }
        }

        // Then it served what it held, and then refused with 503's retry, never asking for more
        assertThat(served).isEqualTo((int) ((held + 29) / 31));
        assertThat(refused.retryAfter()).isPositive();

        // When the store is back
        store.away = false;
        clock.advance(Duration.ofSeconds(2));

        // Then it leases again, and what it could not give back before reaches the store
        assertThatCode(() -> budgets.admit(USER, List.of(request("hello", 10)))).doesNotThrowAnyException();
        budgets.flush();
        assertThat(store.row(USER, Window.DAY, Window.DAY.start(TEN)).consumed).isEqualTo(2);
    }

    @Test
    void withoutTheUsersLimitsALimitedRequestIsNotServed() {
        store.away = true;
        var budgets = new Budgets(store, new Limits(100L, null, null), clock, Budgets.Timing.DEFAULT);

        assertThatThrownBy(() -> budgets.admit(USER, List.of(request("hello", 10))))
                .isInstanceOf(BudgetUnavailableException.class);
    }

    @Test
    void aUsersOwnLimitsReplaceTheDefaultsAndReachOtherInstancesWithTheirNextRead() {
        // Given two instances, the second holding a slice under the default of 1000 a day
        var first = budgets(new Limits(1000L, null, null));
        var second = budgets(new Limits(1000L, null, null));
        second.admit(USER, List.of(request("hello", 10)));

        // When the operator sets 40 a day through the first
        first.setLimits(USER, new Limits(40L, null, null));

        // Then the first applies it at once
        assertThat(first.limitsOf(USER)).isEqualTo(new Limits(40L, null, null));
        assertThat(first.limits(USER).own()).isTrue();

        // And the second once it has read the limits again: what it held under the old ones goes back at its flush
        second.refreshLimits();
        second.flush();
        assertThat(second.limitsOf(USER).tokensPerDay()).isEqualTo(40);
        assertThat(store.row(USER, Window.DAY, Window.DAY.start(TEN)).granted).as("only the request in flight").isEqualTo(31);
        assertThatThrownBy(() -> second.admit(USER, List.of(request("hello", 10)))).isInstanceOf(LimitExceededException.class);
    }

    @Test
    void aWorkerThatCountsBeyondTheBoundIsChargedAllTheSame() {
        var budgets = budgets(new Limits(100L, null, null));
        var request = request("hello", 10);
        budgets.admit(USER, List.of(request));

        budgets.settled(request, new TokenUsage(90, 10)); // reserved 31, billed 100
        budgets.giveBackEverything();

        var row = store.row(USER, Window.DAY, Window.DAY.start(TEN));
        assertThat(row.consumed).isEqualTo(100);
        assertThat(row.granted).isEqualTo(100);
    }

    @Test
    void standingIsTheLimitLessWhatWasBilledIncludingWhatThisInstanceHasNotReportedYet() {
        var budgets = budgets(new Limits(100L, null, 10L));
        var request = request("hello", 10);
        budgets.admit(USER, List.of(request));
        budgets.settled(request, new TokenUsage(5, 7));

        var standing = budgets.standing(USER);

        assertThat(standing.limits()).isEqualTo(new Limits(100L, null, 10L));
        assertThat(standing.remaining()).containsEntry(Window.DAY, 88L).containsEntry(Window.MINUTE, 9L)
                .doesNotContainKey(Window.MONTH);
    }

    @Test
    void standingLeavesOutWhatRequestsInFlightReserveAndShowsItApart() {
        // Given a request in flight, reserving 5 + 16 + 10 = 31 tokens and one request
        var budgets = budgets(new Limits(100L, null, 10L));
        var request = request("hello", 10);
        budgets.admit(USER, List.of(request));

        // Then what remains for another request is the limit less what is reserved, and the reservation is shown
        var inFlight = budgets.standing(USER);
        assertThat(inFlight.remaining()).containsEntry(Window.DAY, 69L).containsEntry(Window.MINUTE, 9L);
        assertThat(inFlight.reserved()).containsEntry(Window.DAY, 31L).containsEntry(Window.MINUTE, 1L)
                .doesNotContainKey(Window.MONTH);

        // When it is settled, billed 12
        budgets.settled(request, new TokenUsage(5, 7));

        // Then nothing is reserved, and the billed part stays taken
        var settled = budgets.standing(USER);
        assertThat(settled.remaining()).containsEntry(Window.DAY, 88L).containsEntry(Window.MINUTE, 9L);
        assertThat(settled.reserved()).containsEntry(Window.DAY, 0L).containsEntry(Window.MINUTE, 0L);
    }

    @Test
    void aKilledInstancesSlicesReturnToTheUserWithinOneLeaseExpiry() {
        // Given two instances on one store and clock, a day's budget of 200, and one that holds 100 of it with three
        // requests in flight
        var store = new MemoryBudgetStore(clock);
        var doomed = instance(store, new Limits(200L, null, null));
        var survivor = instance(store, new Limits(200L, null, null));
        for (int i = 0; i < 3; i++) {
            doomed.admit(USER, List.of(request("hello", 10)));
        }
        assertThat(store.heldByAll(USER, Window.DAY, Window.DAY.start(TEN))).isEqualTo(100);

        // When it is killed (no give-back, its requests gone with it) and a request needing 150 comes to the other
        // Then that request is refused while the dead one's hold lives
        clock.advance(EXPIRY.minusSeconds(5));
        assertThatThrownBy(() -> survivor.admit(USER, List.of(request("hello", 129)))).isInstanceOf(LimitExceededException.class);

        // and admitted once one lease expiry has passed since the dead one's last renewal: the whole budget is back
        clock.advance(Duration.ofSeconds(5));
        assertThatCode(() -> survivor.admit(USER, List.of(request("hello", 129)))).doesNotThrowAnyException();
        assertThat(store.row(USER, Window.DAY, Window.DAY.start(TEN)).granted).isLessThanOrEqualTo(200);
    }

    @Test
    void anInstanceCutOffFromTheStoreLongerThanTheExpiryBillsNothingOfWhatItHadInFlight() {
        // Given an instance holding a slice with room left, and another one
        var store = new MemoryBudgetStore(clock);
        var cutOff = instance(store, new Limits(200L, null, null));
        var other = instance(store, new Limits(200L, null, null));
        var first = request("hello", 10);
        cutOff.admit(USER, List.of(first));
        long free = cutOff.held(USER, Window.DAY).orElseThrow().free();
        assertThat(free).isGreaterThanOrEqualTo(31);

        // When it is cut off from the store (its renewals fail) but keeps serving
        store.cutOff.add(cutOff.instanceId());
        clock.advance(Duration.ofSeconds(20));
        cutOff.flush();
        var second = request("hello", 10);
        assertThatCode(() -> cutOff.admit(USER, List.of(second)))
                .as("20 s after its last renewal it still serves from its slice").doesNotThrowAnyException();

        // Then, before the store could count its hold as expired (27 s after its last renewal, of 30), it stops
        // reserving from it, and stops charging usage to it: an answer of its requests in flight would not leave
        clock.advance(EXPIRY.minus(Lessee.margin(EXPIRY)).minusSeconds(20));
        assertThat(cutOff.held(USER, Window.DAY).orElseThrow().free()).as("it still holds some").isPositive();
        assertThatThrownBy(() -> cutOff.admit(USER, List.of(request("hello", 10)))).isInstanceOf(BudgetUnavailableException.class);
        assertThatThrownBy(() -> cutOff.charges(first, new TokenUsage(1, 1)))
                .isInstanceOf(CompletionRejectedException.class)
                .satisfies(refused -> assertThat(((CompletionRejectedException) refused).reason())
                        .isEqualTo(CompletionRejectedException.Reason.USAGE_UNACCOUNTED));

        // When the hold has expired in the store, the other gets what it held, never more than the limit
        clock.advance(Lessee.margin(EXPIRY));
        other.admit(USER, List.of(request("hello", 129)));
        Instant day = Window.DAY.start(TEN);
        assertThat(store.row(USER, Window.DAY, day).granted).isLessThanOrEqualTo(200);

        // and the worker answers the cut-off instance's two requests in flight: their usage cannot be charged, so
        // their answers get 503 and they are settled with nothing billed
        for (var inFlight : List.of(first, second)) {
            assertThatThrownBy(() -> cutOff.charges(inFlight, new TokenUsage(1, 1))).isInstanceOf(CompletionRejectedException.class);
            cutOff.settled(inFlight, null);
        }

        // Then billed + reserved stays within the limit, with no allowance (before issue 25's last bound was closed,
        // those two could still be billed: 150 + 2 x 31 = 212 of 200 until they ended)
        long otherReserved = other.held(USER, Window.DAY).orElseThrow().reserved();
        assertThat(otherReserved).isEqualTo(150);
        assertThat(store.row(USER, Window.DAY, day).consumed + otherReserved + cutOff.held(USER, Window.DAY).orElseThrow().reserved())
                .isLessThanOrEqualTo(200);

        // When it reaches the store again, and a row of one of them reaches the store after all (a write sent earlier)
        store.cutOff.clear();
        long since = store.sinceOp(cutOff.instanceId(), USER, Window.DAY, day);
        boolean written = store.chargeOnLiveHolds(List.of(new BudgetCharge(USER, cutOff.instanceId(), since, "day", day, 2)));
        cutOff.flush();
        clock.advance(Duration.ofSeconds(5));
        cutOff.flush();

        // Then the store refuses it (its hold has expired), the instance has learnt that its slice is lost and holds
        // nothing, and nothing was billed: the store counts only the other's hold
        assertThat(written).as("a row charged to an expired hold is refused").isFalse();
        assertThat(cutOff.held(USER, Window.DAY)).hasValueSatisfying(held -> assertThat(held.free() + held.reserved()).isZero());
        assertThat(store.held(cutOff.instanceId(), USER, Window.DAY, day)).isZero();
        var row = store.row(USER, Window.DAY, day);
        assertThat(row.consumed).isZero();
        assertThat(row.granted).as("the other's hold").isEqualTo(150);
    }

    // --- helpers

    private static final Duration EXPIRY = Duration.ofSeconds(30);

    /** An instance whose holds' expiry is measured on the test's clock. */
    private Budgets instance(MemoryBudgetStore store, Limits defaults) {
        return new Budgets(store, defaults, clock, clock.ticker(), Budgets.Timing.DEFAULT, EXPIRY);
    }

    private Budgets budgets(Limits defaults) {
        return new Budgets(store, defaults, clock, Budgets.Timing.DEFAULT);
    }

    private static CompletionRequest request(String prompt, int maxTokens) {
        return new CompletionRequest(UUID.randomUUID(), USER, prompt, new GenerationParameters(maxTokens));
    }
}
