package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.function.Predicate;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;

/**
 * {@link FairShare} seats exactly the requests its former implementation ({@link ReferenceFairShare}) seats: the same
 * request at every seat, whatever the users, costs, batch keys, eligibility, requests ending while they wait and
 * requests forgotten, so making it cheap changed nobody's place in the queue.
 */
class FairShareEquivalenceTest {

    private static final LaneId LANE = new LaneId("m", ServiceTier.DEFAULT);
    private static final int KEYS = 3;

    /** What happens to a lane's fair share, one step at a time. */
    sealed interface Step {
        /** A request of {@code user} joins, of batch key {@code key}, its prompt padded by {@code padding} bytes. */
        record Add(long user, int key, int padding) implements Step {}

        /** The next seat is asked for among the requests {@code eligibility} accepts. */
        record Next(Eligibility eligibility, int keys) implements Step {}

        /** The {@code index}-th request added so far (modulo how many) ends while it waits, failed or cancelled. */
        record End(int index) implements Step {}

        /** The requests that {@code ended} accepts are forgotten. */
        record Forget(Eligibility ended, int keys) implements Step {}
    }

    /** Which requests a predicate accepts; {@code keys} is a set of batch keys as bits. */
    enum Eligibility {
        ANY, OF_KEYS, NOT_DONE_OF_KEYS, DONE;

        Predicate<Queued> of(int keys, List<BatchKey> batchKeys) {
            return switch (this) {
                case ANY -> request -> true;
                case OF_KEYS -> request -> (keys & 1 << batchKeys.indexOf(request.key)) != 0;
                case NOT_DONE_OF_KEYS -> request -> !request.isDone() && (keys & 1 << batchKeys.indexOf(request.key)) != 0;
                case DONE -> Queued::isDone;
            };
        }
    }

    record Scenario(long quantum, List<Step> steps) {}

    @Property(tries = 1000)
    void everySeatGoesToTheRequestTheFormerImplementationSeats(@ForAll("scenarios") Scenario scenario) {
        var reference = new ReferenceFairShare(scenario.quantum());
        var share = new FairShare(scenario.quantum());
        List<BatchKey> batchKeys = new ArrayList<>();
        List<Queued> added = new ArrayList<>();
        int seats = 0;
        for (Step step : scenario.steps()) {
            switch (step) {
                case Step.Add add -> {
                    Queued request = queued(add);
                    if (!batchKeys.contains(request.key)) {
                        batchKeys.add(request.key);
                    }
                    added.add(request);
                    reference.add(request);
                    share.add(request);
                }
                case Step.Next next -> {
                    Predicate<Queued> eligible = next.eligibility().of(next.keys(), batchKeys);
                    Queued expected = reference.next(eligible);
                    Queued seated = share.next(eligible);
                    assertThat(seated).as("seat %d (%s)", seats, next).isSameAs(expected);
                    seats++;
                }
                case Step.End end -> {
                    if (!added.isEmpty()) {
                        Queued request = added.get(end.index() % added.size());
                        if (end.index() % 2 == 0) {
                            request.completion.cancel(false);
                        } else {
                            request.fail(new IllegalStateException("deadline"));
                        }
                        if (request.dropUnsent()) {
                            share.ended(request); // as the scheduler tells the lane of a request that ended unsent
                        }
                    }
                }
                case Step.Forget forget -> {
                    Predicate<Queued> ended = forget.ended().of(forget.keys(), batchKeys);
                    reference.removeIf(ended);
                    share.removeIf(ended);
                }
            }
            assertThat(share.size()).as("waiting after %s", step).isEqualTo(reference.size());
        }
        // and what is left comes out in the same order
        Queued expected;
        do {
            expected = reference.next(request -> true);
            assertThat(share.next(request -> true)).as("draining").isSameAs(expected);
        } while (expected != null);
    }

    @Provide
    Arbitrary<Scenario> scenarios() {
        Arbitrary<Long> quanta = Arbitraries.of(1L, 1L, 1L, 7L, 64L);
        Arbitrary<Integer> users = Arbitraries.of(1, 2, 3, 5, 20, 300);
        return Combinators.combine(quanta, users).as(Tuple::of)
                .flatMap(setting -> steps(setting.get2()).list().ofMaxSize(600)
                        .map(steps -> new Scenario(setting.get1(), steps)));
    }

    private static Arbitrary<Step> steps(int users) {
        Arbitrary<Integer> keys = Arbitraries.integers().between(1, (1 << KEYS) - 1);
        Arbitrary<Step> add = Combinators.combine(
                        Arbitraries.longs().between(1, users),
                        Arbitraries.integers().between(0, KEYS - 1),
                        Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.integers().between(0, 20)),
                                Tuple.of(1, Arbitraries.integers().between(0, 400))))
                .as(Step.Add::new);
        Arbitrary<Step> next = Combinators.combine(
                        Arbitraries.of(Eligibility.ANY, Eligibility.OF_KEYS, Eligibility.NOT_DONE_OF_KEYS), keys)
                .as(Step.Next::new);
        Arbitrary<Step> end = Arbitraries.integers().between(0, 10_000).map(Step.End::new);
        Arbitrary<Step> forget = Combinators.combine(Arbitraries.of(Eligibility.DONE, Eligibility.OF_KEYS, Eligibility.ANY), keys)
                .as(Step.Forget::new);
        return Arbitraries.frequencyOf(Tuple.of(10, add), Tuple.of(8, next), Tuple.of(2, end), Tuple.of(1, forget));
    }

    private static Queued queued(Step.Add add) {
        var prompt = new Prompt.Text("p" + ".".repeat(add.padding()));
        var request = new CompletionRequest(UUID.randomUUID(), add.user(), prompt, new GenerationParameters(1 + add.key()));
        return new Queued(request, LANE, 0, CallerPresence.ASSUMED, Deltas.NONE);
    }
}
