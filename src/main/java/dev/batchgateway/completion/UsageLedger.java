package dev.batchgateway.completion;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Makes the usage of served completions durable before their answers leave: {@link #record} returns a future that
 * completes once the rows are in the {@link UsageRepository}, or, while the store is away, in the local
 * {@link UsageJournal}. One writer does group commit: it writes every row pending (up to {@code rowsPerWrite}) in one
 * round trip and then releases every waiter of that write, so the rows of batches that finish together share one
 * commit. A replayer hands journaled rows to the store once it is back (and at start, what a previous process left).
 *
 * <p>When neither the store nor the journal takes the rows, their future fails with a
 * {@link CompletionRejectedException} (503: no answer leaves unbilled); rows of answers held back for them are
 * withdrawn (nobody got those tokens), other rows stay pending in memory and are retried with exponential back-off
 * (the worker spent the tokens and the caller had them, or had left). Rows are dropped only when the store refuses them
 * for what they contain, and then reported in full to the {@link UsageEvents} observer, as are the rows still
 * unwritten when the ledger closes.
 *
 * <p>A row of a limited user (one with {@linkplain UsageRecord#charges() budget charges}) is never journaled: it is
 * written to the store only while every hold it charges is live there ({@link UsageRepository#recordOnLiveHolds}),
 * else it is {@linkplain Recorded#unbilled() unbilled}: not written, and its answer must not leave. So its user is never
 * billed beyond the limit, at the cost of answers while the store is out of reach. A write whose answer was lost
 * leaves its limited rows {@linkplain Recorded#inDoubt() in doubt}: their answers do not leave either, and their
 * charges are counted as made (they may have committed), never as free.
 *
 * <p>While {@code capacity} rows or more are pending, or the journal refused the last rows it was given, the ledger
 * reports itself {@link #saturated()}, and the gateway stops taking requests rather than serve completions it cannot
 * bill; it takes them again by itself once the rows are durable.
 */
public final class UsageLedger {

    private static final System.Logger LOG = System.getLogger(UsageLedger.class.getName());
    private static final Duration STOP_AFTER_INTERRUPT = Duration.ofSeconds(5);
    private static final Duration RETRY_AFTER = Duration.ofSeconds(1);

    private final UsageRepository repository;
    private final UsageJournal journal;
    private final int capacity;
    private final int rowsPerWrite;
    private final Duration firstBackoff;
    private final Duration maxBackoff;
    private final Ticker ticker;
    private final UsageEvents events;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition rowsArrived = lock.newCondition();
    private final Condition journalGrew = lock.newCondition();
    private final ArrayDeque<Pending> pending = new ArrayDeque<>();
    private final AtomicInteger pendingCount = new AtomicInteger();
    private final Thread writer;
    private final Thread replayer;
    private volatile boolean closing;
    /** The last write to the store failed and the journal took the rows: journal until a replay reaches the store. */
    private volatile boolean storeAway;
    /** Neither the store nor the journal took the last rows: callers would get 503, so take no more requests. */
    private volatile boolean refusing;
    /** Rows of limited users were turned away since the store last took rows: reported once, not per request. */
    private volatile boolean unaccountedSinceWritten;
    /** While the store is away and nothing is journaled: when rows of limited users may try it again, and the next wait. */
    private long nextStoreTry; // writer thread only
    private Duration storeBackoff; // writer thread only
    private boolean closed; // guarded by lock: the writer is gone, rows recorded now can only be journaled or logged

    /**
     * A ledger without a journal: while the store is away, callers get 503 and rows wait in memory.
     *
     * @param capacity pending rows at which the ledger is saturated
     * @param rowsPerWrite the most rows written in one round trip
     * @param firstBackoff the wait after the first failed write; doubled after each further failure
     * @param maxBackoff the longest wait between two writes
     */
    public UsageLedger(
            UsageRepository repository,
            int capacity,
            int rowsPerWrite,
            Duration firstBackoff,
            Duration maxBackoff,
            Ticker ticker,
            UsageEvents events) {
        this(repository, UsageJournal.NONE, capacity, rowsPerWrite, firstBackoff, maxBackoff, ticker, events);
    }

    /**
     * @param journal where rows go while the store is away
     * @param capacity pending rows at which the ledger is saturated
     * @param rowsPerWrite the most rows written in one round trip
     * @param firstBackoff the wait after the first failed write; doubled after each further failure
     * @param maxBackoff the longest wait between two writes
     */
    public UsageLedger(
            UsageRepository repository,
            UsageJournal journal,
            int capacity,
            int rowsPerWrite,
            Duration firstBackoff,
            Duration maxBackoff,
            Ticker ticker,
            UsageEvents events) {
        this.repository = Objects.requireNonNull(repository, "repository");
        this.journal = Objects.requireNonNull(journal, "journal");
        if (capacity < 1 || rowsPerWrite < 1) {
            throw new IllegalArgumentException("capacity and rows per write must be at least 1");
        }
        if (!firstBackoff.isPositive() || maxBackoff.compareTo(firstBackoff) < 0) {
            throw new IllegalArgumentException("back-off must be positive and max back-off at least the first");
        }
        this.capacity = capacity;
        this.rowsPerWrite = rowsPerWrite;
        this.firstBackoff = firstBackoff;
        this.maxBackoff = maxBackoff;
        this.storeBackoff = firstBackoff;
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        this.events = Objects.requireNonNull(events, "events");
        // a platform thread: the writer is on every answer's path now, and on a small machine a virtual thread's
        // continuation waits behind thousands of request threads for a carrier (measured: a mean commit of 121 ms
        // instead of about 1 at 1,000 completions/s on 2 cores, answers 5 s late)
        this.writer = Thread.ofPlatform().daemon().name("usage-writer").unstarted(this::writeUntilClosed);
        this.replayer = Thread.ofVirtual().name("usage-replayer").unstarted(this::replayUntilClosed);
    }

    /** Starts the writer, and the replayer of what the journal holds (rows a previous process left, too). */
    public UsageLedger start() {
        writer.start();
        replayer.start();
        return this;
    }

    /** {@link #record(List, List)} of rows none of which belongs to an answer held back for it. */
    public CompletableFuture<Void> record(List<UsageRecord> rows) {
        return record(List.of(), rows);
    }

    /**
     * What became of the rows of one {@link #recordAnswers} call.
     *
     * @param rejection set when rows could be made durable nowhere (then the rows of answers held back are withdrawn,
     *     the others stay pending); every answer of the call is turned away with it
     * @param unbilled rows of limited users that were neither written nor billed: their hold was not live, or the
     *     store could not be reached; their answers must not leave, and their requests are billed nothing
     * @param inDoubt rows of limited users whose write's answer was lost: they may be in the store; their answers must
     *     not leave, and what they charge counts as billed
     */
    public record Recorded(CompletionRejectedException rejection, Set<UUID> unbilled, Set<UUID> inDoubt) {
        public Recorded {
            unbilled = Set.copyOf(unbilled);
            inDoubt = Set.copyOf(inDoubt);
        }

        /** Whether the answer of this row must not leave. */
        public boolean unanswered(UUID requestId) {
            return rejection != null || unbilled.contains(requestId) || inDoubt.contains(requestId);
        }
    }

    /**
     * Reports rows of limited users that were not handed to the ledger because their usage could not be accounted
     * against a live hold (the instance's own fence had passed): counted and logged as the ledger's own are.
     */
    public void unaccounted(List<UsageRecord> rows) {
        if (!rows.isEmpty()) {
            reportUnaccounted(rows, false);
        }
    }

    /**
     * Queues the rows for the next write (one write for every row pending then); never blocks on the store. The
     * returned future completes once every one of the rows is durable (in the store or the journal), and fails with a
     * {@link CompletionRejectedException} when they cannot be made durable now. Then the rows of answers held back for
     * them ({@code heldBack}: those answers are turned away, so nobody got the tokens) are dropped; the others stay
     * pending and are retried. Rows recorded after {@link #close} (a batch that outlived the scheduler's grace period)
     * are journaled at once if the journal takes them, and otherwise reported {@link UsageEvents#unwritten unwritten}.
     */
    public CompletableFuture<Void> record(List<UsageRecord> heldBack, List<UsageRecord> others) {
        return recordAnswers(heldBack, others).thenCompose(recorded -> recorded.rejection() == null
                ? CompletableFuture.completedFuture(null)
                : CompletableFuture.failedFuture(recorded.rejection()));
    }

    /**
     * {@link #record(List, List)}, telling row by row what became of them: the future completes once every row is
     * durable, {@linkplain Recorded#unbilled() unbilled} or {@linkplain Recorded#inDoubt() in doubt}, or at the first
     * {@linkplain Recorded#rejection() rejection}. It never fails.
     */
    public CompletableFuture<Recorded> recordAnswers(List<UsageRecord> heldBack, List<UsageRecord> others) {
        List<UsageRecord> rows = new ArrayList<>(heldBack.size() + others.size());
        rows.addAll(heldBack);
        rows.addAll(others);
        if (rows.isEmpty()) {
            return CompletableFuture.completedFuture(new Recorded(null, Set.of(), Set.of()));
        }
        var receipt = new Receipt(rows.size());
        lock.lock();
        try {
            if (!closed) {
                heldBack.forEach(row -> pending.add(new Pending(row, receipt, true)));
                others.forEach(row -> pending.add(new Pending(row, receipt, false)));
                pendingCount.addAndGet(rows.size());
                rowsArrived.signal();
                return receipt.recorded;
            }
        } finally {
            lock.unlock();
        }
        // a limited user's row is never journaled: with the writer gone, it cannot be accounted
        List<UsageRecord> limited = rows.stream().filter(UsageLedger::limited).toList();
        List<UsageRecord> late = rows.stream().filter(row -> !limited(row)).toList();
        if (!limited.isEmpty()) {
            reportUnaccounted(limited, false);
            limited.forEach(row -> receipt.unbilled(row.requestId()));
        }
        if (late.isEmpty()) {
            return receipt.recorded;
        }
        try {
            journal.append(late);
            late.forEach(row -> receipt.rowDurable());
        } catch (RuntimeException unjournaled) {
            report(() -> events.unwritten(late));
            receipt.fail(rejection(), Set.of());
        }
        return receipt.recorded;
    }

    /** Rows served but not yet durable. */
    public int pending() {
        return pendingCount.get();
    }

    /** Pending rows at which the ledger is saturated. */
    public int capacity() {
        return capacity;
    }

    /** True while so many rows are pending, or rows cannot be made durable, that no more completions should be served. */
    public boolean saturated() {
        return refusing || pendingCount.get() >= capacity;
    }

    /**
     * Writes what is pending, for at most the grace period (to the journal if the store is away), then stops the
     * writer and the replayer (rows left in the journal are replayed by the next process that opens it). Rows still
     * unwritten are reported {@link UsageEvents#unwritten unwritten} with their content, so that they can be
     * recovered by hand (writing them again is harmless: the store skips request ids it already has).
     *
     * @return the rows that could not be written
     */
    public List<UsageRecord> close(Duration grace) throws InterruptedException {
        closing = true;
        lock.lock();
        try {
            rowsArrived.signal();
            journalGrew.signal();
        } finally {
            lock.unlock();
        }
        if (writer.isAlive() && !writer.join(grace)) {
            writer.interrupt();
            // the bound is for a store driver that does not give up an interrupted write
            if (!writer.join(STOP_AFTER_INTERRUPT)) {
                LOG.log(System.Logger.Level.WARNING, "the usage writer did not stop within {0} ms of being interrupted",
                        STOP_AFTER_INTERRUPT.toMillis());
            }
        }
        replayer.interrupt();
        if (replayer.isAlive() && !replayer.join(STOP_AFTER_INTERRUPT)) {
            LOG.log(System.Logger.Level.WARNING, "the usage replayer did not stop within {0} ms of being interrupted",
                    STOP_AFTER_INTERRUPT.toMillis());
        }
        List<Pending> left;
        lock.lock();
        try {
            closed = true;
            left = List.copyOf(pending);
        } finally {
            lock.unlock();
        }
        List<UsageRecord> unwritten = left.stream().map(Pending::row).toList();
        if (!unwritten.isEmpty()) {
            var rejection = rejection();
            left.forEach(row -> row.receipt.fail(rejection, Set.of()));
            report(() -> events.unwritten(unwritten));
        }
        return unwritten;
    }

    /** An observer's failure must not stop the writer, nor make it write rows again that are already stored. */
    private static void report(Runnable event) {
        try {
            event.run();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "a usage observer failed; ignored", e);
        }
    }

    private void writeUntilClosed() {
        Duration backoff = firstBackoff;
        try {
            while (true) {
                List<Pending> rows = nextRows();
                if (rows.isEmpty()) {
                    return;
                }
                if (storeAway) {
                    // rows of limited users alone, and nothing journaled whose replay would find the store back:
                    // they try the store themselves, once a back-off
                    boolean probe = journal.isEmpty() && rows.stream().allMatch(row -> limited(row.row()))
                            && ticker.nanoTime() - nextStoreTry >= 0;
                    if (!probe) {
                        rows = withoutLimited(rows, false); // never journaled: the store cannot charge them now
                        if (rows.isEmpty() || journal(rows)) {
                            continue;
                        }
                    }
                    storeAway = false; // the journal cannot take them, or it is time to try: perhaps the store can
                }
                try {
                    write(rows);
                    backoff = firstBackoff;
                } catch (UsageWriteException.Permanent refused) {
                    backoff = isolateRefused(rows, refused) ? firstBackoff : sleep(backoff);
                } catch (UsageWriteException.Recoverable away) {
                    storeAway = true;
                    nextStoreTry = ticker.nanoTime() + storeBackoff.toNanos();
                    storeBackoff = storeBackoff.multipliedBy(2).compareTo(maxBackoff) > 0 ? maxBackoff : storeBackoff.multipliedBy(2);
                    rows = withoutLimited(rows, away.maybeWritten());
                    if (rows.isEmpty() || journal(rows)) {
                        backoff = firstBackoff;
                    } else {
                        // the journal cannot help: try the store again next time, and turn callers away meanwhile
                        storeAway = false;
                        refuse(rows);
                        backoff = sleep(backoff);
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Error e) {
            LOG.log(System.Logger.Level.ERROR, "the usage writer stopped; rows stay pending until the ledger saturates", e);
            throw e;
        }
    }

    /** The oldest pending rows, without removing them; empty once closing with nothing pending. */
    private List<Pending> nextRows() throws InterruptedException {
        lock.lock();
        try {
            if (pending.isEmpty()) {
                refusing = false; // nothing left to retry after the back-off: let completions come and find out
            }
            while (pending.isEmpty()) {
                if (closing) {
                    return List.of();
                }
                rowsArrived.await();
            }
            List<Pending> rows = new ArrayList<>(Math.min(rowsPerWrite, pending.size()));
            for (Pending row : pending) {
                if (rows.size() == rowsPerWrite) {
                    break;
                }
                rows.add(row);
            }
            return rows;
        } finally {
            lock.unlock();
        }
    }

    private void write(List<Pending> rows) {
        List<UsageRecord> records = rows.stream().map(Pending::row).toList();
        long started = ticker.nanoTime();
        Set<UUID> refused;
        try {
            refused = repository.recordOnLiveHolds(records);
        } catch (RuntimeException failure) {
            throw writeFailed(failure);
        }
        storeBackoff = firstBackoff;
        if (refused.isEmpty()) {
            unaccountedSinceWritten = false;
            removeOldest(rows);
            written(rows.size(), started);
            return;
        }
        // rows of limited users whose hold the store no longer counted live: neither written nor billed
        List<Pending> unbilled = rows.stream().filter(row -> refused.contains(row.row().requestId())).toList();
        List<Pending> durable = rows.stream().filter(row -> !refused.contains(row.row().requestId())).toList();
        drop(unbilled, false);
        removeOldest(durable);
        written(durable.size(), started);
    }

    private static boolean limited(UsageRecord row) {
        return !row.charges().isEmpty();
    }

    /**
     * The rows of users without limits; those of limited users, which can be charged now only in the store and the
     * store is away, are dropped from pending: {@linkplain Recorded#inDoubt in doubt} when their write may have
     * committed, else {@linkplain Recorded#unbilled unbilled}.
     */
    private List<Pending> withoutLimited(List<Pending> rows, boolean inDoubt) {
        List<Pending> limited = rows.stream().filter(row -> limited(row.row())).toList();
        if (limited.isEmpty()) {
            return rows;
        }
        drop(limited, inDoubt);
        return rows.stream().filter(row -> !limited(row.row())).toList();
    }

    /** Removes rows of limited users from pending (anywhere in it), and tells their waiters what became of them. */
    private void drop(List<Pending> rows, boolean inDoubt) {
        Set<Pending> dropped = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        dropped.addAll(rows);
        lock.lock();
        try {
            pending.removeIf(dropped::contains);
            pendingCount.addAndGet(-rows.size());
        } finally {
            lock.unlock();
        }
        for (Pending row : rows) {
            if (inDoubt) {
                row.receipt.inDoubt(row.row().requestId());
            } else {
                row.receipt.unbilled(row.row().requestId());
            }
        }
        reportUnaccounted(rows.stream().map(Pending::row).toList(), inDoubt);
    }

    /** Counts rows of limited users that could not be accounted; the first of an outage is also logged. */
    private void reportUnaccounted(List<UsageRecord> rows, boolean inDoubt) {
        boolean first = !unaccountedSinceWritten;
        unaccountedSinceWritten = true;
        report(() -> events.unaccounted(rows, inDoubt, first));
    }

    /** Appends the (oldest pending) rows to the journal; true when they are durable there and released. */
    private boolean journal(List<Pending> rows) {
        List<UsageRecord> records = rows.stream().map(Pending::row).toList();
        long started = ticker.nanoTime();
        try {
            journal.append(records);
        } catch (RuntimeException failure) {
            refusing = true;
            var unjournaled = failure instanceof UsageJournalException known
                    ? known
                    : new UsageJournalException("unexpected failure: " + failure, failure);
            report(() -> events.journalFailed(unjournaled));
            return false;
        }
        removeOldest(rows);
        lock.lock();
        try {
            journalGrew.signal();
        } finally {
            lock.unlock();
        }
        long latency = ticker.nanoTime() - started;
        report(() -> events.journaled(rows.size(), Duration.ofNanos(latency)));
        return true;
    }

    /**
     * After the store refused a write of these (oldest pending) rows, finds the rows it refuses by halving: one bad
     * row among a thousand costs about twenty writes, not a thousand. Refused rows are logged and dropped, and their
     * callers turned away (the row can never be billed); the others are written.
     *
     * @return false when the store went away meanwhile; the rows not yet settled stay pending
     */
    private boolean isolateRefused(List<Pending> rows, UsageWriteException.Permanent refused) {
        if (rows.size() == 1) {
            Pending dropped = rows.getFirst();
            lock.lock();
            try {
                pending.pollFirst();
                pendingCount.decrementAndGet();
            } finally {
                lock.unlock();
            }
            dropped.receipt.fail(rejection(), Set.of());
            report(() -> events.rejected(List.of(dropped.row), refused));
            return true;
        }
        int half = rows.size() / 2;
        return writeOrIsolate(rows.subList(0, half)) && writeOrIsolate(rows.subList(half, rows.size()));
    }

    private boolean writeOrIsolate(List<Pending> rows) {
        try {
            write(rows);
            return true;
        } catch (UsageWriteException.Permanent refused) {
            return isolateRefused(rows, refused);
        } catch (UsageWriteException.Recoverable away) {
            return false;
        }
    }

    /**
     * The (oldest pending) rows can be made durable nowhere: their waiters are turned away, and the rows of answers
     * that are held back are withdrawn; the others stay pending, in order.
     */
    private void refuse(List<Pending> rows) {
        var rejection = rejection();
        rows.forEach(row -> row.receipt.fail(rejection, Set.of()));
        lock.lock();
        try {
            List<Pending> kept = new ArrayList<>(rows.size());
            for (int i = 0; i < rows.size(); i++) {
                Pending row = pending.pollFirst();
                if (!row.withdrawnIfRefused) {
                    kept.add(row);
                }
            }
            for (int i = kept.size() - 1; i >= 0; i--) {
                pending.addFirst(kept.get(i));
            }
            pendingCount.addAndGet(kept.size() - rows.size());
        } finally {
            lock.unlock();
        }
    }

    /** Removes the rows, the oldest pending ones, and releases each waiter whose rows are all durable now. */
    private void removeOldest(List<Pending> rows) {
        lock.lock();
        try {
            for (int i = 0; i < rows.size(); i++) {
                pending.pollFirst();
            }
            pendingCount.addAndGet(-rows.size());
        } finally {
            lock.unlock();
        }
        refusing = false;
        rows.forEach(row -> row.receipt.rowDurable());
    }

    /** Hands journaled rows to the store whenever the journal holds some, backing off while the store is away. */
    private void replayUntilClosed() {
        Duration backoff = firstBackoff;
        try {
            while (!closing) {
                lock.lock();
                try {
                    while (journal.isEmpty() && !closing) {
                        journalGrew.await(maxBackoff.toNanos(), TimeUnit.NANOSECONDS);
                    }
                } finally {
                    lock.unlock();
                }
                if (closing) {
                    return;
                }
                try {
                    journal.replay(rowsPerWrite, this::replay);
                    storeAway = false;
                    backoff = firstBackoff;
                } catch (UsageWriteException away) {
                    backoff = sleep(backoff);
                } catch (RuntimeException unexpected) {
                    LOG.log(System.Logger.Level.WARNING, "replaying the usage journal failed; trying again", unexpected);
                    backoff = sleep(backoff);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** One replayed write: rows the store refuses for what they contain are reported and skipped, one by one. */
    private void replay(List<UsageRecord> rows) {
        long started = ticker.nanoTime();
        try {
            repository.record(rows);
        } catch (UsageWriteException.Permanent refused) {
            if (rows.size() == 1) {
                report(() -> events.rejected(rows, refused));
                return;
            }
            rows.forEach(row -> replay(List.of(row)));
            return;
        } catch (RuntimeException failure) {
            throw writeFailed(failure);
        }
        written(rows.size(), started);
    }

    /** Reports a failed write; one the store did not declare is taken for a recoverable one, never for a refusal. */
    private UsageWriteException writeFailed(RuntimeException failure) {
        var reported = failure instanceof UsageWriteException declared
                ? declared
                : new UsageWriteException.Recoverable("unexpected failure: " + failure, failure);
        report(() -> events.writeFailed(reported));
        return reported;
    }

    /** Reports a write of {@code rows} rows that began at {@code started} (ticker nanoseconds). */
    private void written(int rows, long started) {
        long latency = ticker.nanoTime() - started;
        report(() -> events.written(rows, Duration.ofNanos(latency)));
    }

    private Duration sleep(Duration backoff) throws InterruptedException {
        ticker.sleep(backoff);
        Duration doubled = backoff.multipliedBy(2);
        return doubled.compareTo(maxBackoff) > 0 ? maxBackoff : doubled;
    }

    private CompletionRejectedException rejection() {
        return new CompletionRejectedException(CompletionRejectedException.Reason.USAGE_BACKLOG, RETRY_AFTER);
    }

    /** A pending row, the waiter of the call that recorded it, and whether it is dropped when it cannot be made durable. */
    private record Pending(UsageRecord row, Receipt receipt, boolean withdrawnIfRefused) {}

    /**
     * The future of one {@link #recordAnswers} call: completed when its last row is durable, unbilled or in doubt, or
     * at its first refusal.
     */
    private static final class Receipt {
        final CompletableFuture<Recorded> recorded = new CompletableFuture<>();
        private final AtomicInteger notYetDone;
        private final Set<UUID> unbilled = ConcurrentHashMap.newKeySet();
        private final Set<UUID> inDoubt = ConcurrentHashMap.newKeySet();

        Receipt(int rows) {
            this.notYetDone = new AtomicInteger(rows);
        }

        void rowDurable() {
            if (notYetDone.decrementAndGet() == 0) {
                recorded.complete(new Recorded(null, unbilled, inDoubt));
            }
        }

        void unbilled(UUID requestId) {
            unbilled.add(requestId);
            rowDurable();
        }

        void inDoubt(UUID requestId) {
            inDoubt.add(requestId);
            rowDurable();
        }

        void fail(CompletionRejectedException rejection, Set<UUID> alsoUnbilled) {
            unbilled.addAll(alsoUnbilled);
            recorded.complete(new Recorded(rejection, unbilled, inDoubt));
        }
    }
}
