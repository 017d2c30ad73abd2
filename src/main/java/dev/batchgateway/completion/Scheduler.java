package dev.batchgateway.completion;

import java.time.Duration;
import java.time.InstantSource;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * Collects requests into batches and sends each batch to the worker in one call.
 *
 * <p>The scheduler admits requests (a bounded queue, flex at most half of it), gives each its deadline, and puts it in
 * its lane: one per model and service tier. The {@link Dispatcher} forms each lane's batches by generation parameters
 * (the model among them) and kind, texts or chats, seats each lane's users in fair share ({@link FairShare}), and sends a
 * batch when it holds {@code batchSize} requests, or when its first request has waited {@code maxWait} since it reached
 * the gateway (see {@link CallerPresence#waitedBeforeQueue()}), and its model's workers have a slot free
 * ({@link Capacity}): a model without one never holds up another. Each batch's call ({@link BatchCalls}) runs on a
 * virtual thread of its own (see {@link #batches}); the dispatching loop on a platform thread.
 */
public final class Scheduler implements SchedulerApi {

    private static final System.Logger LOG = System.getLogger(Scheduler.class.getName());
    private static final Duration MIN_RETRY_AFTER = Duration.ofSeconds(1);

    private final WorkerApi worker;
    private final UsageLedger ledger;
    private final SchedulerPolicy policy;
    private final Ticker ticker;
    private final SchedulerEvents events;

    private final AtomicInteger waiting = new AtomicInteger();
    private final AtomicInteger flexWaiting = new AtomicInteger();
    /** Submissions between their look at {@link #accepting} and their arrival at the loop: shutdown waits for them. */
    private final AtomicInteger admitting = new AtomicInteger();
    private final Map<LaneId, AtomicInteger> laneDepths = new ConcurrentHashMap<>();
    private final ScheduledExecutorService timers;
    /**
     * Worker calls run on virtual threads, one per batch in flight: 1,400 calls in flight held 1,400 platform threads
     * (issue 32), each with its stack outside the heap. Since no request thread waits for its answer any more, the
     * carriers are no longer crowded with thousands of them, which is what made calls on virtual threads slow before
     * (docs/performance.md).
     */
    private final ExecutorService batches =
            Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("batch-", 0).factory());
    private final AtomicLong batchIds = new AtomicLong();
    private final DrainRate drainRate;
    private final BatchCalls calls;
    private final Dispatcher dispatcher;
    private final Thread loop;
    private volatile boolean accepting = true;
    private volatile boolean loopEnded;

    /** A scheduler whose requests reserve nothing: none of them is settled anywhere. */
    public Scheduler(
            WorkerApi worker,
            UsageLedger ledger,
            SchedulerPolicy policy,
            Ticker ticker,
            InstantSource clock,
            SchedulerEvents events) {
        this(worker, ledger, policy, ticker, clock, events, Settlement.NONE);
    }

    /** @param settlement told exactly once what each request taken costs, on every path */
    public Scheduler(
            WorkerApi worker,
            UsageLedger ledger,
            SchedulerPolicy policy,
            Ticker ticker,
            InstantSource clock,
            SchedulerEvents events,
            Settlement settlement) {
        this(worker, ledger, policy, ticker, clock, events, settlement, FairShare::new);
    }

    Scheduler(
            WorkerApi worker,
            UsageLedger ledger,
            SchedulerPolicy policy,
            Ticker ticker,
            InstantSource clock,
            SchedulerEvents events,
            Settlement settlement,
            Supplier<LanePolicy> lanePolicy) {
        this.worker = Objects.requireNonNull(worker, "worker");
        this.ledger = Objects.requireNonNull(ledger, "ledger");
        this.policy = Objects.requireNonNull(policy, "policy");
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        this.events = Objects.requireNonNull(events, "events");
        Objects.requireNonNull(clock, "clock");
        Objects.requireNonNull(settlement, "settlement");
        this.drainRate = new DrainRate(ticker);
        var timerPool = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon().name("scheduler-timers").factory());
        timerPool.setRemoveOnCancelPolicy(true);
        this.timers = timerPool;
        this.calls = new BatchCalls(ledger, policy, ticker, clock, events, settlement, timers);
        this.dispatcher = new Dispatcher(policy, ticker, events,
                model -> worker.capacity(model).orElseGet(() -> new SlotLimit(worker, policy.maxConcurrentBatches())),
                lanePolicy, this::send);
        // a platform thread, as the batches' are: forming batches must not wait for a carrier behind thousands of
        // runnable request threads (a burst of 10,000 callers, issue 32)
        this.loop = Thread.ofPlatform().daemon().name("batch-loop").unstarted(this::run);
    }

    /** Starts the batching loop. */
    public Scheduler start() {
        loop.start();
        return this;
    }

    @Override
    public CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout) {
        return submit(request, timeout, CallerPresence.ASSUMED);
    }

    @Override
    public CompletableFuture<Completion> submit(CompletionRequest request, Duration timeout, CallerPresence caller) {
        return submit(request, timeout, caller, Deltas.NONE);
    }

    @Override
    public CompletableFuture<Completion> submit(
            CompletionRequest request, Duration timeout, CallerPresence caller, Deltas deltas) {
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(caller, "caller");
        Objects.requireNonNull(deltas, "deltas");
        admitting.incrementAndGet(); // before the look at accepting: shutdown sees this submission or it sees shutdown
        try {
            return admit(request, timeout, caller, deltas);
        } finally {
            admitting.decrementAndGet();
        }
    }

    private CompletableFuture<Completion> admit(CompletionRequest request, Duration timeout, CallerPresence caller, Deltas deltas) {
        if (!accepting) {
            throw reject(request, CompletionRejectedException.Reason.SHUTTING_DOWN);
        }
        if (ledger.saturated()) {
            throw reject(request, CompletionRejectedException.Reason.USAGE_BACKLOG);
        }
        boolean flex = request.serviceTier() == ServiceTier.FLEX;
        if (flex && flexWaiting.incrementAndGet() > policy.flexQueueCapacity()) {
            flexWaiting.decrementAndGet();
            throw reject(request, CompletionRejectedException.Reason.FLEX_QUEUE_FULL);
        }
        if (waiting.incrementAndGet() > policy.queueCapacity()) {
            waiting.decrementAndGet();
            if (flex) {
                flexWaiting.decrementAndGet();
            }
            throw reject(request, CompletionRejectedException.Reason.QUEUE_FULL);
        }
        LaneId lane = new LaneId(modelOf(request), request.serviceTier());
        AtomicInteger laneDepth = laneDepths.computeIfAbsent(lane, id -> new AtomicInteger());
        laneDepth.incrementAndGet();
        Duration limit = policy.requestTimeout(request.serviceTier());
        Duration deadline = timeout.compareTo(limit) < 0 ? timeout : limit;
        long waitedBefore = Math.max(0, caller.waitedBeforeQueue().toNanos());
        Queued queued = new Queued(request, lane, ticker.nanoTime() - waitedBefore, caller, deltas);
        ScheduledFuture<?> expiry;
        try {
            expiry = timers.schedule(() -> queued.fail(new DeadlineExceededException(deadline)),
                    Math.max(0, deadline.toNanos() - waitedBefore), TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException stopped) {
            leaveQueue(queued);
            throw reject(request, CompletionRejectedException.Reason.SHUTTING_DOWN);
        }
        queued.completion.whenComplete((completion, failure) -> {
            try {
                expiry.cancel(false);
                leaveQueue(queued);
                events.requestFinished(request, completion, failure);
            } finally {
                if (queued.dropUnsent()) {
                    dispatcher.ended(queued);
                    calls.settle(queued, null); // it ends before its batch leaves: the worker never sees it
                }
            }
        });
        dispatcher.arrive(queued); // before the loop's stop: shutdown waits for it
        if (loopEnded && dispatcher.withdraw(queued)) {
            // the loop broke down, or shutdown stopped waiting for this submission: nobody will send it
            queued.fail(new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, MIN_RETRY_AFTER));
        }
        return queued.completion;
    }

    /** How many requests are admitted and not yet sent to the worker. */
    public int queued() {
        return waiting.get();
    }

    /** How many requests of this lane are admitted and not yet sent to the worker. */
    public int queued(LaneId lane) {
        AtomicInteger depth = laneDepths.get(lane);
        return depth == null ? 0 : depth.get();
    }

    /** How many settlements threw: each may have left a reservation held; none should ever. */
    public long settlementFailures() {
        return calls.settlementFailures();
    }

    /** How many worker calls are in flight, every model's. */
    public int batchesInFlight() {
        return dispatcher.batchesInFlight();
    }

    /**
     * Stops taking requests, sends every queued request in last batches as slots come free, and waits for the batches
     * in flight. What has not finished within the grace period is answered with a {@link CompletionRejectedException}.
     *
     * @return true when everything finished within the grace period
     */
    public boolean shutdown(Duration grace) throws InterruptedException {
        long deadline = ticker.nanoTime() + grace.toNanos();
        accepting = false;
        // a request admitted before that is in the last batches, not turned away: its submission arrives at the loop
        // before the stop does (the drain's log line counted it as queued)
        while (admitting.get() > 0 && ticker.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        dispatcher.stop();
        loop.join(grace);
        boolean finished = !loop.isAlive();
        if (!finished) {
            loop.interrupt();
        }
        batches.shutdown();
        long left = Math.max(0, deadline - ticker.nanoTime());
        finished &= batches.awaitTermination(left, TimeUnit.NANOSECONDS);
        if (!finished) {
            LOG.log(System.Logger.Level.WARNING, "batches still running after {0} ms of shutdown; abandoning them", grace.toMillis());
            batches.shutdownNow();
        }
        timers.shutdownNow();
        return finished;
    }

    /** The model a request's lane serves: the one it names, or the worker's default. */
    private String modelOf(CompletionRequest request) {
        return request.parameters().model() != null ? request.parameters().model() : worker.model();
    }

    private CompletionRejectedException reject(CompletionRequest request, CompletionRejectedException.Reason reason) {
        var rejection = new CompletionRejectedException(reason, retryAfter());
        events.rejected(request, rejection);
        return rejection;
    }

    private Duration retryAfter() {
        double perSecond = drainRate.perSecond();
        if (perSecond <= 0) {
            return MIN_RETRY_AFTER;
        }
        long seconds = (long) Math.ceil(waiting.get() / perSecond);
        return seconds < 1 ? MIN_RETRY_AFTER : Duration.ofSeconds(seconds);
    }

    private void run() {
        try {
            runLoop();
        } finally {
            loopEnded = true;
        }
    }

    private void runLoop() {
        try {
            dispatcher.run();
        } catch (InterruptedException e) {
            var shuttingDown = new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, MIN_RETRY_AFTER);
            answerLeft(shuttingDown);
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.ERROR, "batch loop failed; no more requests are taken", e);
            accepting = false;
            var broken = new WorkerException.Unavailable("the batch loop stopped", e);
            answerLeft(broken);
            throw e;
        }
    }

    /** Fails every request the loop still held; one it had marked sent never left, so it is settled unbilled here. */
    private void answerLeft(RuntimeException failure) {
        for (Queued queued : dispatcher.drain()) {
            queued.fail(failure);
            if (queued.wasSent()) {
                calls.settle(queued, null);
            }
        }
    }

    /** A batch leaves its lane on its slot: its members leave the queue and its call starts on a thread of its own. */
    private void send(Capacity.Slot slot, LaneId lane, List<Queued> members, int flexSeats, BatchTrigger trigger) {
        long now = ticker.nanoTime();
        for (Queued queued : members) {
            leaveQueue(queued);
            Duration waited = Duration.ofNanos(now - queued.arrivedAt);
            events.timeInQueue(waited);
            events.timeInLane(queued.lane, waited);
        }
        if (flexSeats > 0) {
            events.flexSeatsFilled(lane.model(), flexSeats);
        }
        drainRate.record(members.size());
        BatchKey key = members.getFirst().key;
        long id = batchIds.incrementAndGet();
        Batch batch = switch (key.kind()) {
            case CHAT -> Batch.ofChats(id, key.parameters(), members.stream().map(q -> (Prompt.Chat) q.request.prompt()).toList());
            case EMBEDDING -> Batch.ofEmbeddings(id, key.parameters(),
                    members.stream().map(q -> (Prompt.Embedding) q.request.prompt()).toList());
            case TEXT -> new Batch(id, key.parameters(), members.stream().map(q -> ((Prompt.Text) q.request.prompt()).text()).toList());
        };
        events.batchDispatched(batch, trigger, waiting.get(), batchesInFlight());
        try {
            batches.execute(() -> calls.complete(slot, batch, members, lane.model(), dispatcher::wake));
        } catch (RejectedExecutionException stopped) {
            slot.close();
            var shuttingDown = new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, MIN_RETRY_AFTER);
            members.forEach(queued -> queued.fail(shuttingDown));
            members.forEach(queued -> calls.settle(queued, null));
        }
    }

    private void leaveQueue(Queued queued) {
        if (queued.left.compareAndSet(false, true)) {
            waiting.decrementAndGet();
            laneDepths.get(queued.lane).decrementAndGet();
            if (queued.lane.tier() == ServiceTier.FLEX) {
                flexWaiting.decrementAndGet();
            }
        }
    }
}
