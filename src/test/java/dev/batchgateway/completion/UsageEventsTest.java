package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

class UsageEventsTest {

    @Test
    void allReportsToEveryObserverInTurn() {
        // Given two observers that note what they hear
        List<String> heard = new ArrayList<>();
        var events = UsageEvents.all(List.of(noting("first", heard), noting("second", heard)));
        var row = new UsageRecord(UUID.randomUUID(), 1, new TokenUsage(1, 1), "m", Instant.now());

        // When each kind of event is reported
        events.written(3, Duration.ofMillis(1));
        events.writeFailed(new UsageWriteException.Recoverable("away", null));
        events.rejected(List.of(row), new UsageWriteException.Permanent("refused", null));
        events.unwritten(List.of(row));

        // Then both heard each, in order
        assertThat(heard).containsExactly(
                "first written", "second written", "first failed", "second failed",
                "first rejected", "second rejected", "first unwritten", "second unwritten");
    }

    @Test
    void noObserversIsNone() {
        assertThat(UsageEvents.all(List.of())).isSameAs(UsageEvents.NONE);
    }

    @Test
    void oneObserverIsThatObserverItself() {
        var only = noting("only", new ArrayList<>());
        assertThat(UsageEvents.all(List.of(only))).isSameAs(only);
    }

    private static UsageEvents noting(String name, List<String> heard) {
        return new UsageEvents() {
            @Override
            public void written(int rows, Duration latency) {
                heard.add(name + " written");
            }

            @Override
            public void writeFailed(UsageWriteException failure) {
                heard.add(name + " failed");
            }

            @Override
            public void rejected(List<UsageRecord> rows, UsageWriteException.Permanent refusal) {
                heard.add(name + " rejected");
            }

            @Override
            public void unwritten(List<UsageRecord> rows) {
                heard.add(name + " unwritten");
            }
        };
    }
}
