package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Deficit round robin by user, weighted by each request's token bound, FIFO within one user. */
class FairShareTest {

    private static final LaneId LANE = new LaneId("m", ServiceTier.DEFAULT);

    @Test
    void usersTakeTurnsAndEachUsersRequestsKeepTheirOrder() {
        // Given two users with three requests each, of the same size, the first user's all queued first
        var share = new FairShare();
        for (int i = 0; i < 3; i++) {
            share.add(queued(1, "a" + i, 10));
        }
        for (int i = 0; i < 3; i++) {
            share.add(queued(2, "b" + i, 10));
        }

        // When all six are seated
        List<String> order = seatAll(share);

        // Then they alternate, each user's own in the order they came
        assertThat(order).containsExactly("a0", "b0", "a1", "b1", "a2", "b2");
    }

    @Test
    void requestsThatEndedWhileWaitingAreDroppedOnTheWayNotScannedAgainForEverySeat() {
        // Given a user with thousands of requests waiting, all but the last ended at once (a shutdown, a shared deadline)
        var share = new FairShare();
        List<Queued> waiting = new ArrayList<>();
        for (int i = 0; i < 5_000; i++) {
            Queued request = queued(1, "r" + i, 10);
            waiting.add(request);
            share.add(request);
        }
        waiting.subList(0, waiting.size() - 1).forEach(request -> request.fail(new IllegalStateException("ended")));

        // When the next seat is filled from those not ended
        Queued next = share.next(request -> !request.isDone());

        // Then it is the last, and the ended ones are gone rather than passed over again at the next seat
        assertThat(next).isSameAs(waiting.getLast());
        assertThat(share.size()).isZero();
    }

    @Test
    void aUserWhoseRequestsWeighTenTimesMoreGetsATenthOfTheSeats() {
        // Given a user of long requests (bound about 1,000 tokens) and one of short ones (about 100), both with plenty queued
        var share = new FairShare();
        for (int i = 0; i < 100; i++) {
            share.add(queued(1, "long" + i, 1000));
            share.add(queued(2, "short" + i, 100));
        }

        // When 55 seats are filled
        Map<Long, Long> tokens = new HashMap<>();
        Map<Long, Integer> seats = new HashMap<>();
        for (int i = 0; i < 55; i++) {
            Queued next = share.next(request -> true);
            tokens.merge(next.userId(), next.cost, Long::sum);
            seats.merge(next.userId(), 1, Integer::sum);
        }

        // Then each user had about the same tokens, so the short one about ten times the seats
        assertThat(seats.get(1L)).isBetween(4, 6);
        assertThat(seats.get(2L)).isBetween(49, 51);
        assertThat((double) tokens.get(1L) / tokens.get(2L)).isBetween(0.8, 1.25);
    }

    @Test
    void aNewcomerWithOneRequestIsSeatedBeforeTheBusyUsersNextHundreds() {
        // Given a busy user with 300 requests, 20 of them already seated
        var share = new FairShare();
        for (int i = 0; i < 300; i++) {
            share.add(queued(1, "busy" + i, 25));
        }
        for (int i = 0; i < 20; i++) {
            share.next(request -> true);
        }

        // When a newcomer queues one request of the same size
        share.add(queued(2, "light", 25));

        // Then it is among the next two seats
        List<String> next = List.of(share.next(request -> true).request.prompt().toString(),
                share.next(request -> true).request.prompt().toString());
        assertThat(next).anyMatch(prompt -> prompt.contains("light"));
    }

    @Test
    void onlyEligibleRequestsAreSeatedAndTheOthersKeepTheirPlace() {
        // Given one user's requests of two kinds, interleaved
        var share = new FairShare();
        share.add(queued(1, "x0", 10));
        share.add(queued(1, "y0", 10));
        share.add(queued(1, "x1", 10));

        // When only the y kind may be seated, then anything
        Queued y = share.next(request -> text(request).startsWith("y"));

        // Then y leaves first, and the x ones stay in their order
        assertThat(text(y)).isEqualTo("y0");
        assertThat(seatAll(share)).containsExactly("x0", "x1");
        assertThat(share.next(request -> true)).isNull();
    }

    @Test
    void requestsThatEndedWhileWaitingAreForgotten() {
        // Given two users, one of whose requests was cancelled
        var share = new FairShare();
        var cancelled = queued(1, "gone", 10);
        share.add(cancelled);
        share.add(queued(2, "stays", 10));
        cancelled.completion.cancel(false);

        // When the lane forgets what ended
        share.removeIf(Queued::isDone);

        // Then only the other is left
        assertThat(share.size()).isEqualTo(1);
        assertThat(seatAll(share)).containsExactly("stays");
    }

    private static List<String> seatAll(FairShare share) {
        List<String> order = new ArrayList<>();
        Queued next;
        while ((next = share.next(request -> true)) != null) {
            order.add(text(next));
        }
        return order;
    }

    private static String text(Queued queued) {
        return ((Prompt.Text) queued.request.prompt()).text().split(" ")[0];
    }

    /** A request of this user whose token bound is about {@code weight} (its prompt padded to it). */
    private static Queued queued(long user, String prompt, int weight) {
        var parameters = new GenerationParameters(1);
        String padded = prompt + " " + ".".repeat(Math.max(0, weight - TokenBound.TEXT_ALLOWANCE - 1 - prompt.length() - 1));
        var request = new CompletionRequest(java.util.UUID.randomUUID(), user, new Prompt.Text(padded), parameters);
        return new Queued(request, LANE, 0, CallerPresence.ASSUMED, Deltas.NONE);
    }
}
