package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class DrainRateTest {

    private final ManualTicker ticker = new ManualTicker();
    private final DrainRate rate = new DrainRate(ticker);

    @Test
    void knowsNoRateBeforeAWholeWindowHasPassed() {
        // Given requests sent just before a second has passed
        rate.record(10);
        ticker.advance(Duration.ofNanos(999_999_999));
        rate.record(10);

        // Then no rate is known yet
        assertThat(rate.perSecond()).isZero();
    }

    @Test
    void theFirstWindowGivesTheRateItself() {
        // Given 10 requests at once, and 20 more exactly one second after the rate was created
        rate.record(10);
        ticker.advance(Duration.ofSeconds(1));
        rate.record(20);

        // Then the rate is 30 per second
        assertThat(rate.perSecond()).isEqualTo(30.0);
    }

    @Test
    void aLongerWindowIsDividedByItsLength() {
        // Given 30 requests over two seconds
        ticker.advance(Duration.ofSeconds(2));
        rate.record(30);

        // Then the rate is 15 per second
        assertThat(rate.perSecond()).isEqualTo(15.0);
    }

    @Test
    void laterWindowsAreAveragedWithTheRateSoFar() {
        // Given a first window of 40 per second
        ticker.advance(Duration.ofSeconds(1));
        rate.record(40);

        // When the next window, which starts where the first ended, sees 10 per second over two seconds
        ticker.advance(Duration.ofSeconds(2));
        rate.record(20);

        // Then the rate is their mean, 25 per second
        assertThat(rate.perSecond()).isEqualTo(25.0);

        // And a third window of 5 per second starts its count afresh: (25 + 5) / 2
        ticker.advance(Duration.ofSeconds(1));
        rate.record(5);
        assertThat(rate.perSecond()).isEqualTo(15.0);
    }
}
