package dev.batchgateway.budget;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import org.junit.jupiter.api.Test;

/** A user's own limits cleared: back on the defaults here at once, and on other instances at their next read. */
class ClearedLimitsTest {

    private static final long USER = 7;
    private static final Limits DEFAULTS = new Limits(1000L, null, null);

    private final MemoryBudgetStore store = new MemoryBudgetStore();
    private final ManualClock clock = new ManualClock(Instant.parse("2026-11-24T10:00:00Z"));

    @Test
    void clearedLimitsGiveWayToTheDefaultsHereAtOnceAndElsewhereAtTheNextRead() {
        // Given two instances that both know the user's own limits
        var first = new Budgets(store, DEFAULTS, clock, Budgets.Timing.DEFAULT);
        var second = new Budgets(store, DEFAULTS, clock, Budgets.Timing.DEFAULT);
        first.setLimits(USER, new Limits(40L, null, 5L));
        second.refreshLimits();
        assertThat(second.limitsOf(USER)).isEqualTo(new Limits(40L, null, 5L));

        // When the first clears them
        var cleared = first.clearLimits(USER);

        // Then the first applies the defaults at once, the second once it reads the limits again
        assertThat(cleared.own()).isFalse();
        assertThat(first.limitsOf(USER)).isEqualTo(DEFAULTS);
        assertThat(first.limits(USER).own()).isFalse();
        assertThat(second.limitsOf(USER)).as("before its next read").isEqualTo(new Limits(40L, null, 5L));
        second.refreshLimits();
        assertThat(second.limitsOf(USER)).isEqualTo(DEFAULTS);
    }
}
