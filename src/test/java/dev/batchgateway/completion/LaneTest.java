package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** One lane's bookkeeping: which batch keys are ready, and seating their requests. */
class LaneTest {

    private static final LaneId LANE = new LaneId("m", ServiceTier.DEFAULT);
    private static final long MAX_WAIT_NANOS = 1_000;

    @Test
    void aReadyKeyWhoseRequestsAllEndedUnannouncedIsNotReadyAgainOnceATakeFindsNone() {
        // Given a lane with two requests of one key past max-wait, both ended without the lane being told (ended()
        // races with the loop: the dispatcher found the key ready again and again, and spun forever)
        var lane = new Lane(LANE, new FairShare());
        Queued first = queued();
        Queued second = queued();
        lane.add(first);
        lane.add(second);
        first.fail(new IllegalStateException("expired"));
        second.fail(new IllegalStateException("expired"));
        var ready = lane.ready(MAX_WAIT_NANOS, MAX_WAIT_NANOS, key -> 8, false, key -> 0);
        assertThat(ready).hasSize(1);

        // When a batch is taken from it
        List<Queued> taken = lane.take(ready, key -> 8);

        // Then nobody is seated, and the ended requests are forgotten: nothing is ready, the lane is empty
        assertThat(taken).isEmpty();
        assertThat(lane.ready(MAX_WAIT_NANOS, MAX_WAIT_NANOS, key -> 8, true, key -> 0)).isEmpty();
        assertThat(lane.isEmpty()).isTrue();
    }

    private static Queued queued() {
        var request = new CompletionRequest(UUID.randomUUID(), 1, new Prompt.Text("hello"), new GenerationParameters(1));
        return new Queued(request, LANE, 0, CallerPresence.ASSUMED, Deltas.NONE);
    }
}
