package dev.batchgateway.completion;

import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * One batch's call to its worker and the end of it: the watchdog that answers its callers 504 when the worker takes
 * too long, the streamed text handed on, each outcome turned into a usage row and an answer, the answers given once
 * their rows are durable, the slot given back, and every member settled exactly once.
 */
final class BatchCalls {

    private static final System.Logger LOG = System.getLogger(BatchCalls.class.getName());
    private static final Duration MIN_RETRY_AFTER = Duration.ofSeconds(1);
    /** As long as a request short of budget waits while the budget store is away. */
    private static final Duration UNACCOUNTED_RETRY_AFTER = Duration.ofSeconds(5);

    private final UsageLedger ledger;
    private final SchedulerPolicy policy;
    private final Ticker ticker;
    private final InstantSource clock;
    private final SchedulerEvents events;
    private final Settlement settlement;
    private final ScheduledExecutorService timers;
    private final AtomicLong settlementFailures = new AtomicLong();

    BatchCalls(
            UsageLedger ledger,
            SchedulerPolicy policy,
            Ticker ticker,
            InstantSource clock,
            SchedulerEvents events,
            Settlement settlement,
            ScheduledExecutorService timers) {
        this.ledger = ledger;
        this.policy = policy;
        this.ticker = ticker;
        this.clock = clock;
        this.events = events;
        this.settlement = settlement;
        this.timers = timers;
    }

    /** How many settlements threw. */
    long settlementFailures() {
        return settlementFailures.get();
    }

    /**
     * Runs the batch on its slot and ends it: every member answered or failed, the slot given back (then {@code
     * slotFree} is told), and every member settled, whatever happens.
     */
    void complete(Capacity.Slot slot, Batch batch, List<Queued> members, String model, Runnable slotFree) {
        Served served = Served.NOTHING;
        try {
            served = charged(callWorker(slot, batch, members, model), members);
        } finally {
            // settled in any case: a reservation must never outlive its batch
            List<UsageRecord> billed = served.rows();
            try {
                slot.close();
                slotFree.run();
                billed = answerOnceDurable(served);
                failUnanswered(members);
            } finally {
                settle(members, billed);
            }
        }
    }

    /** Fails every member still without an answer; the failure is built only then (a stack trace per batch costs). */
    private static void failUnanswered(List<Queued> members) {
        if (members.stream().allMatch(Queued::isDone)) {
            return;
        }
        var lost = new WorkerException.BadAnswer("the batch ended without an answer for this request");
        members.forEach(queued -> queued.fail(lost));
    }

    /**
     * Hands the rows to the ledger and gives the answers only once the rows are durable: a crash after an answer left
     * must not lose its usage. Rows the ledger cannot make durable turn their callers away (503), never unbilled; the
     * rows of whole answers so held back are withdrawn (nobody got those tokens), those of streams (whose text has
     * left already) and of callers who had gone are kept. A limited user's row is durable only in the store, charged
     * to a live hold: else it is not written, and its answer (a stream's final event) does not leave (503).
     *
     * @return the rows billed: all of them, less those withdrawn or unaccounted
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
        CompletableFuture<UsageLedger.Recorded> durable = ledger.recordAnswers(rows.get(true), rows.get(false));
        if (served.answers().isEmpty() && served.rows().stream().allMatch(row -> row.charges().isEmpty())) {
            return served.rows(); // nobody waits, and no budget waits to learn whether they were billed
        }
        Set<UUID> heldBack = new HashSet<>();
        rows.get(true).forEach(row -> heldBack.add(row.requestId()));
        try {
            UsageLedger.Recorded recorded = durable.get(policy.requestTimeout().toNanos(), TimeUnit.NANOSECONDS);
            for (Answer answer : served.answers()) {
                if (recorded.rejection() != null) {
                    answer.queued().fail(recorded.rejection());
                } else if (recorded.unanswered(answer.completion().requestId())) {
                    answer.queued().fail(new CompletionRejectedException(
                            CompletionRejectedException.Reason.USAGE_UNACCOUNTED, UNACCOUNTED_RETRY_AFTER));
                } else {
                    answer.give();
                }
            }
            // rows in doubt count as billed: they may be in the store, charged
            List<UsageRecord> kept = recorded.rejection() == null
                    ? served.rows()
                    : served.rows().stream().filter(row -> !heldBack.contains(row.requestId())
                            || recorded.inDoubt().contains(row.requestId())).toList();
            return kept.stream().filter(row -> !recorded.unbilled().contains(row.requestId())).toList();
        } catch (ExecutionException impossible) {
            // the ledger's future never fails; should it, its rows are taken as billed, the safe side of a limit
            served.answers().forEach(answer -> answer.queued().fail(impossible.getCause()));
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

    /**
     * Each row with what it costs its user's budget windows, charged in the row's own commit. A row whose usage cannot
     * be charged to a live hold (the instance's own fence passed: it cannot have been renewed in time) is not written
     * at all: its answer is turned away (503) and its request billed nothing.
     */
    private Served charged(Served served, List<Queued> members) {
        Map<UUID, CompletionRequest> requests = new HashMap<>();
        members.forEach(queued -> requests.put(queued.request.requestId(), queued.request));
        List<UsageRecord> rows = new ArrayList<>(served.rows().size());
        List<UsageRecord> unaccounted = new ArrayList<>();
        Map<UUID, CompletionRejectedException> refusals = new HashMap<>();
        for (UsageRecord row : served.rows()) {
            try {
                rows.add(row.charging(settlement.charges(requests.get(row.requestId()), row.usage())));
            } catch (RuntimeException e) {
                if (!(e instanceof CompletionRejectedException)) {
                    settlementFailures.incrementAndGet();
                    LOG.log(System.Logger.Level.ERROR, "charging request " + row.requestId() + " of user " + row.userId()
                            + " to its budget failed: it is not billed, and its answer not given", e);
                }
                unaccounted.add(row);
                refusals.put(row.requestId(), e instanceof CompletionRejectedException rejected ? rejected
                        : new CompletionRejectedException(CompletionRejectedException.Reason.USAGE_UNACCOUNTED,
                                UNACCOUNTED_RETRY_AFTER));
            }
        }
        ledger.unaccounted(unaccounted);
        List<Answer> answers = new ArrayList<>(served.answers().size());
        for (Answer answer : served.answers()) {
            CompletionRejectedException refusal = refusals.get(answer.completion().requestId());
            if (refusal == null) {
                answers.add(answer);
            } else {
                answer.queued().fail(refusal);
            }
        }
        return new Served(rows, answers);
    }

    /** The batch has ended: each member is billed what the ledger recorded for it, or nothing. */
    private void settle(List<Queued> members, List<UsageRecord> served) {
        Map<UUID, TokenUsage> billed = new HashMap<>();
        served.forEach(row -> billed.put(row.requestId(), row.usage()));
        members.forEach(queued -> settle(queued, billed.get(queued.request.requestId())));
    }

    /** One request's cost, final; a settlement that throws is logged and counted, and keeps no other from settling. */
    void settle(Queued queued, TokenUsage billed) {
        try {
            settlement.settled(queued.request, billed);
        } catch (RuntimeException e) {
            settlementFailures.incrementAndGet();
            LOG.log(System.Logger.Level.ERROR, "settling request " + queued.request.requestId() + " of user "
                    + queued.request.userId() + " failed: what it reserved may stay held until its window ends", e);
        }
    }

    private Served callWorker(Capacity.Slot slot, Batch batch, List<Queued> members, String model) {
        AtomicReference<Thread> caller = new AtomicReference<>(Thread.currentThread());
        Supplier<WorkerException> timedOut = () -> new WorkerException.TimedOut(
                "the worker did not answer within " + policy.workerTimeout().toMillis() + " ms");
        ScheduledFuture<?> watchdog = timers.schedule(() -> {
            var failure = timedOut.get();
            members.forEach(queued -> queued.fail(failure));
            Thread abandoned = caller.getAndSet(null);
            if (abandoned != null) {
                abandoned.interrupt();
            }
        }, policy.workerTimeout().toNanos(), TimeUnit.NANOSECONDS);

        long started = ticker.nanoTime();
        var progress = new Progress(members);
        List<WorkerOutcome> outcomes;
        try {
            outcomes = slot.complete(batch, progress); // or embeds it, as the batch's kind says
        } catch (RuntimeException e) {
            WorkerException failure = e instanceof WorkerException known
                    ? known
                    : new WorkerException.BadAnswer("the worker adapter failed: " + e.getMessage(), e);
            watchdog.cancel(false);
            if (caller.getAndSet(null) == null) {
                failure = timedOut.get(); // the watchdog abandoned this call; its failure is the consequence
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
            events.batchFinished(batch, Duration.ofNanos(ticker.nanoTime() - started), timedOut.get());
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
                    served.add(UsageRecord.of(request, generated.usage(), model, servedAt,
                            queued.outcome(UsageOutcome.SERVED)));
                    answers.add(new Answer(queued, completion));
                }
                case WorkerOutcome.Embedded embedded -> {
                    // billed as a completion is: the worker spent the tokens, whatever became of the caller
                    CompletionRequest request = queued.request;
                    served.add(UsageRecord.of(request, embedded.usage(), model, servedAt, queued.outcome(UsageOutcome.SERVED)));
                    answers.add(new Answer(queued, Completion.embedded(request.requestId(), embedded.vector(), embedded.usage())));
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
            return Optional.of(UsageRecord.of(request, usage, model, at,
                    members.get(prompt).outcome(UsageOutcome.STREAM_FAILED)));
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
}
