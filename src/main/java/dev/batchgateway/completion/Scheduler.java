package dev.batchgateway.completion;

import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.stream.Collectors;

/**
 * Collects requests into batches and sends each batch to the worker in one call.
 *
 * <p>One loop on a virtual thread takes requests from the queue and groups them by generation parameters (the model
 * among them) and by kind, texts or chats. A group leaves as a batch when it holds {@code batchSize} requests, or when
 * its first request has waited {@code maxWait} since it reached the gateway (see {@link CallerPresence#waitedBeforeQueue()}).
 * Each batch's worker call runs on a platform thread of its own (see {@link #batches}), at most
 * {@code maxConcurrentBatches} at once; the loop waits for a free slot, and requests wait in the queue meanwhile, which
 * is bounded by {@code queueCapacity}.
 */
public final class Scheduler implements SchedulerApi {

    private static final System.Logger LOG = System.getLogger(Scheduler.class.getName());
    private static final Duration MIN_RETRY_AFTER = Duration.ofSeconds(1);

    private final WorkerApi worker;
    private final UsageLedger ledger;
    private final SchedulerPolicy policy;
    private final Ticker ticker;
    private final InstantSource clock;
    private final SchedulerEvents events;
    private final Settlement settlement;
    private final AtomicLong settlementFailures = new AtomicLong();

    private final BlockingQueue<Queued> incoming = new LinkedBlockingQueue<>();
    private final AtomicInteger waiting = new AtomicInteger();
    private final Semaphore batchSlots;
    private final ScheduledExecutorService timers;
    /**
     * Worker calls run on platform threads (one per batch, at most max-concurrent-batches): on a small machine the
     * virtual-thread carriers are busy with thousands of request threads, and a batch's continuation waiting behind
     * them stretched each worker call (measured at 2 cores: mean worker call 78-88 ms on virtual threads, 57-59 ms on
     * platform threads, against a 50 ms worker). Few threads, each on the critical path: the OS schedules them fairly.
     * They are kept for the next batch (a minute idle at most): starting one for every batch put 0.15 ms between a
     * batch leaving and its call starting.
     */
    private final ExecutorService batches =
            Executors.newCachedThreadPool(Thread.ofPlatform().daemon().name("batch-", 0).factory());
    private final AtomicLong batchIds = new AtomicLong();
    private final DrainRate drainRate;
    private final Thread loop;
    private volatile boolean accepting = true;

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
        this.worker = Objects.requireNonNull(worker, "worker");
        this.ledger = Objects.requireNonNull(ledger, "ledger");
        this.policy = Objects.requireNonNull(policy, "policy");
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.events = Objects.requireNonNull(events, "events");
        this.settlement = Objects.requireNonNull(settlement, "settlement");
        this.batchSlots = new Semaphore(policy.maxConcurrentBatches());
        this.drainRate = new DrainRate(ticker);
        var timerPool = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon().name("scheduler-timers").factory());
        timerPool.setRemoveOnCancelPolicy(true);
        this.timers = timerPool;
        this.loop = Thread.ofVirtual().name("batch-loop").unstarted(this::run);
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
        if (!accepting) {
            throw reject(request, CompletionRejectedException.Reason.SHUTTING_DOWN);
        }
        if (ledger.saturated()) {
            throw reject(request, CompletionRejectedException.Reason.USAGE_BACKLOG);
        }
        if (waiting.incrementAndGet() > policy.queueCapacity()) {
            waiting.decrementAndGet();
            throw reject(request, CompletionRejectedException.Reason.QUEUE_FULL);
        }
        Duration deadline = timeout.compareTo(policy.requestTimeout()) < 0 ? timeout : policy.requestTimeout();
        long waitedBefore = Math.max(0, caller.waitedBeforeQueue().toNanos());
        Queued queued = new Queued(request, ticker.nanoTime() - waitedBefore, caller, deltas);
        ScheduledFuture<?> expiry;
        try {
            expiry = timers.schedule(() -> queued.fail(new DeadlineExceededException(deadline)),
                    Math.max(0, deadline.toNanos() - waitedBefore), TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException stopped) {
            waiting.decrementAndGet();
            throw reject(request, CompletionRejectedException.Reason.SHUTTING_DOWN);
        }
        queued.completion.whenComplete((completion, failure) -> {
            try {
                expiry.cancel(false);
                leaveQueue(queued);
                events.requestFinished(request, completion, failure);
            } finally {
                if (queued.dropUnsent()) {
                    settle(queued, null); // it ends before its batch leaves: the worker never sees it
                }
            }
        });
        incoming.add(queued);
        if (!accepting && incoming.remove(queued)) {
            // shutdown began while we queued, and the loop's last sweep has passed: answer here instead
            queued.fail(new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, MIN_RETRY_AFTER));
        }
        return queued.completion;
    }

    /** How many requests are admitted and not yet sent to the worker. */
    public int queued() {
        return waiting.get();
    }

    /** How many settlements threw: each may have left a reservation held; none should ever. */
    public long settlementFailures() {
        return settlementFailures.get();
    }

    /** How many worker calls are in flight. */
    public int batchesInFlight() {
        return policy.maxConcurrentBatches() - batchSlots.availablePermits();
    }

    /**
     * Stops taking requests, sends every queued request in a last batch, and waits for the batches in flight. What
     * has not finished within the grace period is answered with a {@link CompletionRejectedException}.
     *
     * @return true when everything finished within the grace period
     */
    public boolean shutdown(Duration grace) throws InterruptedException {
        long deadline = ticker.nanoTime() + grace.toNanos();
        accepting = false;
        incoming.add(Queued.STOP);
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
        Map<BatchKey, List<Queued>> forming = new LinkedHashMap<>();
        try {
            boolean stopping = false;
            while (!stopping) {
                Queued next = forming.isEmpty()
                        ? incoming.take()
                        : incoming.poll(nanosUntilFirstDue(forming), TimeUnit.NANOSECONDS);
                while (next != null) {
                    if (next == Queued.STOP) {
                        stopping = true;
                    } else {
                        forming.computeIfAbsent(BatchKey.of(next.request), key -> new ArrayList<>()).add(next);
                    }
                    next = incoming.poll();
                }
                dispatchReady(forming, stopping);
            }
            Queued left;
            while ((left = incoming.poll()) != null) {
                if (left != Queued.STOP) {
                    forming.computeIfAbsent(BatchKey.of(left.request), key -> new ArrayList<>()).add(left);
                }
            }
            dispatchReady(forming, true);
        } catch (InterruptedException e) {
            var shuttingDown = new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, MIN_RETRY_AFTER);
            forming.values().forEach(group -> group.forEach(queued -> queued.fail(shuttingDown)));
            incoming.forEach(queued -> queued.fail(shuttingDown));
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            LOG.log(System.Logger.Level.ERROR, "batch loop failed; no more requests are taken", e);
            accepting = false;
            var broken = new WorkerException.Unavailable("the batch loop stopped", e);
            forming.values().forEach(group -> group.forEach(queued -> queued.fail(broken)));
            incoming.forEach(queued -> queued.fail(broken));
            throw e;
        }
    }

    private long nanosUntilFirstDue(Map<BatchKey, List<Queued>> forming) {
        long now = ticker.nanoTime();
        long soonest = Long.MAX_VALUE;
        for (List<Queued> group : forming.values()) {
            soonest = Math.min(soonest, group.getFirst().arrivedAt + policy.maxWait().toNanos() - now);
        }
        return Math.max(0, soonest);
    }

    private void dispatchReady(Map<BatchKey, List<Queued>> forming, boolean everything)
            throws InterruptedException {
        Iterator<Map.Entry<BatchKey, List<Queued>>> groups = forming.entrySet().iterator();
        while (groups.hasNext()) {
            var entry = groups.next();
            List<Queued> group = entry.getValue();
            group.removeIf(Queued::isDone);
            while (group.size() >= policy.batchSize()) {
                List<Queued> full = new ArrayList<>(group.subList(0, policy.batchSize()));
                group.subList(0, policy.batchSize()).clear();
                dispatch(entry.getKey(), full, BatchTrigger.FULL);
            }
            if (!group.isEmpty() && everything) {
                dispatch(entry.getKey(), new ArrayList<>(group), BatchTrigger.SHUTDOWN);
                group.clear();
            } else if (!group.isEmpty() && ticker.nanoTime() - group.getFirst().arrivedAt >= policy.maxWait().toNanos()) {
                dispatch(entry.getKey(), new ArrayList<>(group), BatchTrigger.MAX_WAIT);
                group.clear();
            }
            if (group.isEmpty()) {
                groups.remove();
            }
        }
    }

    private void dispatch(BatchKey key, List<Queued> members, BatchTrigger trigger)
            throws InterruptedException {
        try {
            batchSlots.acquire();
        } catch (InterruptedException gracePeriodOver) {
            // shutdown ended the wait for a slot: these requests left the queue but never reached the worker
            var shuttingDown = new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, MIN_RETRY_AFTER);
            members.forEach(queued -> queued.fail(shuttingDown));
            throw gracePeriodOver;
        }
        // cancelled or expired while waiting for a slot, or the caller has gone: the last moment to spare the worker;
        // from markSent on, the request's cost is settled when its batch ends, not when its future completes
        members.removeIf(queued -> queued.isDone() || queued.callerGone() || !queued.markSent());
        if (members.isEmpty()) {
            batchSlots.release();
            return;
        }
        long now = ticker.nanoTime();
        for (Queued queued : members) {
            leaveQueue(queued);
            events.timeInQueue(Duration.ofNanos(now - queued.arrivedAt));
        }
        drainRate.record(members.size());
        Batch batch = key.chat()
                ? Batch.ofChats(batchIds.incrementAndGet(), key.parameters(),
                        members.stream().map(q -> (Prompt.Chat) q.request.prompt()).toList())
                : new Batch(batchIds.incrementAndGet(), key.parameters(),
                        members.stream().map(q -> ((Prompt.Text) q.request.prompt()).text()).toList());
        events.batchDispatched(batch, trigger, waiting.get(), batchesInFlight());
        try {
            batches.execute(() -> complete(batch, members));
        } catch (RejectedExecutionException stopped) {
            batchSlots.release();
            var shuttingDown = new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, MIN_RETRY_AFTER);
            members.forEach(queued -> queued.fail(shuttingDown));
            settle(members, List.of());
        }
    }

    private void leaveQueue(Queued queued) {
        if (queued.left.compareAndSet(false, true)) {
            waiting.decrementAndGet();
        }
    }

    private void complete(Batch batch, List<Queued> members) {
        Served served = Served.NOTHING;
        try {
            served = charged(callWorker(batch, members), members);
        } finally {
            // settled in any case: a reservation must never outlive its batch
            List<UsageRecord> billed = served.rows();
            try {
                batchSlots.release();
                billed = answerOnceDurable(served);
                var lost = new WorkerException.BadAnswer("the batch ended without an answer for this request");
                members.forEach(queued -> queued.fail(lost));
            } finally {
                settle(members, billed);
            }
        }
    }

    /**
     * Hands the rows to the ledger and gives the answers only once the rows are durable: a crash after an answer left
     * must not lose its usage. Rows the ledger cannot make durable turn their callers away (503), never unbilled; the
     * rows of whole answers so held back are withdrawn (nobody got those tokens), those of streams (whose text has
     * left already) and of callers who had gone are kept.
     *
     * @return the rows billed: all of them, less those withdrawn
     */
    private List<UsageRecord> answerOnceDurable(Served served) {
        Set<UUID> withdrawable = new HashSet<>();
        served.answers().forEach(answer -> {
            if (!answer.queued().streams()) {
                withdrawable.add(answer.completion().requestId());
            }
        });
        Map<Boolean, List<UsageRecord>> rows = served.rows().stream()
                .collect(Collectors.partitioningBy(row -> withdrawable.contains(row.requestId())
                        && row.outcome() == UsageOutcome.SERVED));
        CompletableFuture<Void> durable = ledger.record(rows.get(true), rows.get(false));
        if (served.answers().isEmpty()) {
            return served.rows();
        }
        try {
            durable.get(policy.requestTimeout().toNanos(), TimeUnit.NANOSECONDS);
            served.answers().forEach(Answer::give);
        } catch (ExecutionException unrecorded) {
            served.answers().forEach(answer -> answer.queued().fail(unrecorded.getCause()));
            return rows.get(false);
        } catch (TimeoutException slow) {
            var unrecorded = new CompletionRejectedException(CompletionRejectedException.Reason.USAGE_BACKLOG, MIN_RETRY_AFTER);
            served.answers().forEach(answer -> answer.queued().fail(unrecorded));
        } catch (InterruptedException gracePeriodOver) {
            var shuttingDown = new CompletionRejectedException(CompletionRejectedException.Reason.SHUTTING_DOWN, MIN_RETRY_AFTER);
            served.answers().forEach(answer -> answer.queued().fail(shuttingDown));
            Thread.currentThread().interrupt();
        }
        return served.rows();
    }

    /** Each row with what it costs its user's budget windows, charged in the row's own commit. */
    private Served charged(Served served, List<Queued> members) {
        Map<UUID, CompletionRequest> requests = new HashMap<>();
        members.forEach(queued -> requests.put(queued.request.requestId(), queued.request));
        List<UsageRecord> rows = new ArrayList<>(served.rows().size());
        for (UsageRecord row : served.rows()) {
            try {
                rows.add(row.charging(settlement.charges(requests.get(row.requestId()), row.usage())));
            } catch (RuntimeException e) {
                // uncharged, its settlement reports it to the budget the slower way (with the next give-back)
                settlementFailures.incrementAndGet();
                LOG.log(System.Logger.Level.ERROR, "charging request " + row.requestId() + " of user " + row.userId()
                        + " to its budget failed", e);
                rows.add(row);
            }
        }
        return new Served(rows, served.answers());
    }

    /** The batch has ended: each member is billed what the ledger recorded for it, or nothing. */
    private void settle(List<Queued> members, List<UsageRecord> served) {
        Map<UUID, TokenUsage> billed = new HashMap<>();
        served.forEach(row -> billed.put(row.requestId(), row.usage()));
        members.forEach(queued -> settle(queued, billed.get(queued.request.requestId())));
    }

    /** One request's cost, final; a settlement that throws is logged and counted, and keeps no other from settling. */
    private void settle(Queued queued, TokenUsage billed) {
        try {
            settlement.settled(queued.request, billed);
        } catch (RuntimeException e) {
            settlementFailures.incrementAndGet();
            LOG.log(System.Logger.Level.ERROR, "settling request " + queued.request.requestId() + " of user "
                    + queued.request.userId() + " failed: what it reserved may stay held until its window ends", e);
        }
    }

    private Served callWorker(Batch batch, List<Queued> members) {
        AtomicReference<Thread> caller = new AtomicReference<>(Thread.currentThread());
        var timedOut = new WorkerException.TimedOut(
                "the worker did not answer within " + policy.workerTimeout().toMillis() + " ms");
        ScheduledFuture<?> watchdog = timers.schedule(() -> {
            members.forEach(queued -> queued.fail(timedOut));
            Thread abandoned = caller.getAndSet(null);
            if (abandoned != null) {
                abandoned.interrupt();
            }
        }, policy.workerTimeout().toNanos(), TimeUnit.NANOSECONDS);

        long started = ticker.nanoTime();
        String model = batch.parameters().model() != null ? batch.parameters().model() : worker.model();
        var progress = new Progress(members);
        List<WorkerOutcome> outcomes;
        try {
            outcomes = worker.complete(batch, progress);
        } catch (RuntimeException e) {
            WorkerException failure = e instanceof WorkerException known
                    ? known
                    : new WorkerException.BadAnswer("the worker adapter failed: " + e.getMessage(), e);
            watchdog.cancel(false);
            if (caller.getAndSet(null) == null) {
                failure = timedOut; // the watchdog abandoned this call; its failure is the consequence
                Thread.interrupted();
            }
            events.batchFinished(batch, Duration.ofNanos(ticker.nanoTime() - started), failure);
            for (Queued queued : members) {
                queued.fail(failure);
            }
            return Served.unanswered(progress.counted(model, clock.instant()));
        }
        watchdog.cancel(false);
        if (caller.getAndSet(null) == null) {
            Thread.interrupted();
            events.batchFinished(batch, Duration.ofNanos(ticker.nanoTime() - started), timedOut);
            return Served.unanswered(progress.counted(model, clock.instant()));
        }
        Duration latency = Duration.ofNanos(ticker.nanoTime() - started);
        if (outcomes == null || outcomes.size() != members.size()) {
            var wrongCount = new WorkerException.BadAnswer("the worker answered "
                    + (outcomes == null ? "nothing" : outcomes.size() + " results") + " for " + members.size() + " prompts");
            events.batchFinished(batch, latency, wrongCount);
            members.forEach(queued -> queued.fail(wrongCount));
            return Served.unanswered(progress.counted(model, clock.instant()));
        }
        events.batchFinished(batch, latency, null);
        List<UsageRecord> served = new ArrayList<>(members.size());
        List<Answer> answers = new ArrayList<>(members.size());
        var servedAt = clock.instant();
        for (int i = 0; i < members.size(); i++) {
            Queued queued = members.get(i);
            switch (outcomes.get(i)) {
                case WorkerOutcome.Generated generated -> {
                    CompletionRequest request = queued.request;
                    var completion = new Completion(
                            request.requestId(), generated.text(), generated.usage(), generated.finishReason());
                    // one rule: the worker generated it, so it spent the tokens, and the row is written, whether the
                    // caller is still waiting, cancelled, went away or saw its deadline expire after dispatch; the
                    // answer waits for the row to be durable (a caller leaving meanwhile is still billed "served")
                    served.add(UsageRecord.of(request, generated.usage(), model, servedAt, queued.outcome(UsageOutcome.SERVED)));
                    answers.add(new Answer(queued, completion));
                }
                case WorkerOutcome.Failed failed -> {
                    queued.fail(failed.cause());
                    progress.counted(i, model, servedAt).ifPresent(served::add);
                }
                case null -> queued.fail(new WorkerException.BadAnswer("the worker gave no result for this prompt"));
            }
        }
        return new Served(served, answers);
    }

    /** What a batch leaves to bill, and the answers that may leave once those rows are durable. */
    private record Served(List<UsageRecord> rows, List<Answer> answers) {
        static final Served NOTHING = new Served(List.of(), List.of());

        static Served unanswered(List<UsageRecord> rows) {
            return new Served(rows, List.of());
        }
    }

    /** A completion held back until its usage row is durable. */
    private record Answer(Queued queued, Completion completion) {
        void give() {
            queued.completion.complete(completion);
        }
    }

    /**
     * The worker's progress through a batch, handed on to its callers: each piece of text to the caller of its prompt,
     * if it streams and still waits; the running counts kept, so that a batch that fails after the worker generated
     * tokens is billed what the worker counted.
     */
    private static final class Progress implements BatchProgress {
        private final List<Queued> members;
        private final AtomicReferenceArray<TokenUsage> counted;
        private final boolean streamed;

        Progress(List<Queued> members) {
            this.members = members;
            this.counted = new AtomicReferenceArray<>(members.size());
            this.streamed = members.stream().anyMatch(Queued::streams);
        }

        @Override
        public boolean text(int prompt, String delta) {
            Queued queued = members.get(prompt);
            if (!delta.isEmpty() && !queued.isDone()) {
                queued.deltas.text(delta);
            }
            return members.stream().anyMatch(member -> !member.isDone());
        }

        @Override
        public void counted(int prompt, TokenUsage soFar) {
            counted.set(prompt, soFar);
        }

        @Override
        public boolean streamed() {
            return streamed;
        }

        /**
         * The row of a prompt of a streamed batch that failed after the worker counted tokens for it, if it did. An
         * answer that was not streamed is all or nothing: its counts are only believed when the whole answer is.
         */
        Optional<UsageRecord> counted(int prompt, String model, Instant at) {
            TokenUsage usage = counted.get(prompt);
            if (usage == null || !streamed) {
                return Optional.empty();
            }
            CompletionRequest request = members.get(prompt).request;
            return Optional.of(UsageRecord.of(request, usage, model, at, members.get(prompt).outcome(UsageOutcome.STREAM_FAILED)));
        }

        /** The rows of every prompt of a failed batch that the worker counted tokens for. */
        List<UsageRecord> counted(String model, Instant at) {
            List<UsageRecord> rows = new ArrayList<>();
            for (int i = 0; i < members.size(); i++) {
                counted(i, model, at).ifPresent(rows::add);
            }
            return rows;
        }
    }

    /** What requests must share to share a batch: their parameters, and whether they are texts or chats. */
    private record BatchKey(GenerationParameters parameters, boolean chat) {
        static BatchKey of(CompletionRequest request) {
            return new BatchKey(request.parameters(), request.prompt() instanceof Prompt.Chat);
        }
    }

    private enum Stage { QUEUED, SENT, DROPPED }

    /** A request waiting for its batch, with the future its caller waits on. */
    private static final class Queued {
        static final Queued STOP = new Queued(null, 0, CallerPresence.ASSUMED, Deltas.NONE);

        final CompletionRequest request;
        /** When the request reached the gateway: its max-wait counts from here. */
        final long arrivedAt;
        final CallerPresence caller;
        final Deltas deltas;
        final CompletableFuture<Completion> completion = new CompletableFuture<>();
        final AtomicBoolean left = new AtomicBoolean();
        /** Queued, then sent (its batch settles it) or dropped (settled unbilled), whichever comes first. */
        final AtomicReference<Stage> stage = new AtomicReference<>(Stage.QUEUED);

        Queued(CompletionRequest request, long arrivedAt, CallerPresence caller, Deltas deltas) {
            this.request = request;
            this.arrivedAt = arrivedAt;
            this.caller = caller;
            this.deltas = deltas;
        }

        boolean streams() {
            return deltas != Deltas.NONE;
        }

        /** What became of this request, now that the worker generated tokens for it. */
        UsageOutcome outcome(UsageOutcome otherwise) {
            if (completion.isCancelled()) {
                return UsageOutcome.CLIENT_GONE;
            }
            if (completion.isCompletedExceptionally()
                    && completion.exceptionNow() instanceof DeadlineExceededException) {
                return UsageOutcome.DEADLINE;
            }
            return otherwise;
        }

        boolean isDone() {
            return completion.isDone();
        }

        /** Asks the caller's check; a gone caller's future is cancelled. A failing check counts as present. */
        boolean callerGone() {
            boolean gone;
            try {
                gone = !caller.stillWaiting();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "the caller check failed; sending the request anyway", e);
                return false;
            }
            return gone && completion.cancel(false);
        }

        void fail(Throwable failure) {
            completion.completeExceptionally(failure);
        }

        /** Whether the request goes to the worker; false when it had already ended unsent. */
        boolean markSent() {
            return stage.compareAndSet(Stage.QUEUED, Stage.SENT);
        }

        /** Whether the request ended before its batch left (and so is settled unbilled now). */
        boolean dropUnsent() {
            return stage.compareAndSet(Stage.QUEUED, Stage.DROPPED);
        }
    }
}
