package dev.batchgateway.completion;

import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One lane's fair share with many users waiting, as under a load of a thousand connections: each seat taken as
 * {@link Lane} takes it (ended requests and other keys not eligible), and a request of a random user joins for each,
 * so the round keeps its size. The dispatcher's one thread does this for every seat of every batch. Not a test: run with
 * {@code JMH_BENCHMARKS=FairShareBenchmark bench/jmh.sh}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class FairShareBenchmark {

    private static final LaneId LANE = new LaneId("m", ServiceTier.DEFAULT);

    /** Users waiting, each with about two requests. */
    @Param({"1000"})
    public int users;

    private final GenerationParameters parameters = new GenerationParameters(16);
    /** One id for all: a random UUID costs more than a seat. */
    private final UUID id = UUID.randomUUID();
    private final Set<BatchKey> ready = Set.of(BatchKey.of(request(1)));
    private final Predicate<Queued> eligible = request -> !request.isDone() && ready.contains(request.key);
    private FairShare share;
    /** The users of the requests that join, one per seat. */
    private long[] arrivals;
    private int arrival;

    @Setup(Level.Iteration)
    public void fill() {
        share = new FairShare();
        arrivals = new Random(7).longs(1 << 16, 1, users + 1).toArray();
        for (int i = 0; i < 2 * users; i++) {
            share.add(queued(1 + i % users));
        }
    }

    /** One seat taken and one new request joining: seats per second. */
    @Benchmark
    public Queued seat() {
        Queued seated = share.next(eligible);
        share.add(queued(arrivals[arrival++ & arrivals.length - 1]));
        return seated;
    }

    private CompletionRequest request(long user) {
        return new CompletionRequest(id, user, "hello", parameters);
    }

    private Queued queued(long user) {
        return new Queued(request(user), LANE, 0, CallerPresence.ASSUMED, Deltas.NONE);
    }
}
