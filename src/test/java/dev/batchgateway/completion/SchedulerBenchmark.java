package dev.batchgateway.completion;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The scheduler alone: enqueue, batch, dispatch and complete with a worker and a store that do nothing, to guard
 * against regressions in the gateway's own cost. Not a test: run with {@code bench/jmh.sh} (README, Performance).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class SchedulerBenchmark {

    private static final WorkerApi INSTANT_WORKER = new WorkerApi() {
        private final WorkerOutcome answer = new WorkerOutcome.Generated("ok", new TokenUsage(3, 1), FinishReason.STOP);

        @Override
        public List<WorkerOutcome> complete(Batch batch) {
            return batch.prompts().stream().map(prompt -> answer).toList();
        }

        @Override
        public String model() {
            return "instant";
        }
    };

    @Param({"1", "8"})
    public int batchSize;

    private Scheduler scheduler;
    private UsageLedger ledger;
    private final GenerationParameters parameters = new GenerationParameters(16);
    /** Two models, each a lane of its own. */
    private final List<GenerationParameters> twoModels = List.of(
            new GenerationParameters("a", 16, null, null, List.of(), null),
            new GenerationParameters("b", 16, null, null, List.of(), null));
    private static final int USERS = 1000;

    @Setup(Level.Trial)
    public void start() {
        ledger = new UsageLedger(rows -> {}, Integer.MAX_VALUE, 1000, Duration.ofMillis(100), Duration.ofSeconds(1),
                Ticker.system(), UsageEvents.NONE).start();
        var policy = new SchedulerPolicy(batchSize, Duration.ofMillis(1), 32, 100_000, Duration.ofSeconds(60), Duration.ofSeconds(60));
        scheduler = new Scheduler(INSTANT_WORKER, ledger, policy, Ticker.system(), Clock.systemUTC(), SchedulerEvents.NONE).start();
    }

    @TearDown(Level.Trial)
    public void stop() throws InterruptedException {
        scheduler.shutdown(Duration.ofSeconds(5));
        ledger.close(Duration.ofSeconds(5));
    }

    /** 16 callers at once, each waiting for its own completion: requests per second through the whole cycle. */
    @Benchmark
    @Threads(16)
    public Completion complete() throws InterruptedException {
        return scheduler.complete(new CompletionRequest(UUID.randomUUID(), 42, "hello", parameters));
    }

    /**
     * The same with 1,000 users over two models: each request of a random user and model, so that the lanes' fair share
     * has many users in its round.
     */
    @Benchmark
    @Threads(16)
    public Completion completeForManyUsersOfTwoModels() throws InterruptedException {
        var random = ThreadLocalRandom.current();
        return scheduler.complete(new CompletionRequest(
                UUID.randomUUID(), 1 + random.nextInt(USERS), "hello", twoModels.get(random.nextInt(2))));
    }
}
