package dev.batchgateway.completion;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Takes the usage of served completions off the request path and writes it to the {@link UsageRepository},
 * coalescing the rows of batches that finish together into one write, and keeping rows in memory with exponential
 * back-off while the store is away. Rows are dropped only when the store refuses them for what they contain, and then
 * reported in full to the {@link UsageEvents} observer, as are the rows still unwritten when the ledger closes.
 *
 * <p>While {@code capacity} rows or more are pending the ledger reports itself {@link #saturated()}, and the gateway
 * stops taking requests rather than serve completions it cannot bill; it takes them again by itself once the store
 * is back and the backlog has drained.
 */
public final class UsageLedger {

    private static final System.Logger LOG = System.getLogger(UsageLedger.class.getName());
    private static final Duration STOP_AFTER_INTERRUPT = Duration.ofSeconds(5);

    private final UsageRepository repository;
    private final int capacity;
    private final int rowsPerWrite;
    private final Duration firstBackoff;
    private final Duration maxBackoff;
    private final Ticker ticker;
    private final UsageEvents events;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition rowsArrived = lock.newCondition();
    private final ArrayDeque<UsageRecord> pending = new ArrayDeque<>();
    private final AtomicInteger pendingCount = new AtomicInteger();
    private final Thread writer;
    private volatile boolean closing;
    private boolean closed; // guarded by lock: the writer is gone, rows recorded now can only be logged

    /**
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
        this.repository = Objects.requireNonNull(repository, "repository");
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
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        this.events = Objects.requireNonNull(events, "events");
        this.writer = Thread.ofVirtual().name("usage-writer").unstarted(this::writeUntilClosed);
    }

    /** Starts the writer. */
    public UsageLedger start() {
        writer.start();
        return this;
    }

    /**
     * Queues the rows for writing; never blocks on the store and never fails. Rows recorded after {@link #close}
     * (a batch that outlived the scheduler's grace period) cannot be written any more and are reported
     * {@link UsageEvents#unwritten unwritten} instead.
     */
    public void record(List<UsageRecord> rows) {
        if (rows.isEmpty()) {
            return;
        }
        lock.lock();
        try {
            if (!closed) {
                pending.addAll(rows);
                pendingCount.addAndGet(rows.size());
                rowsArrived.signal();
                return;
            }
        } finally {
            lock.unlock();
        }
        report(() -> events.unwritten(List.copyOf(rows)));
    }

    /** Rows served but not yet in the store. */
    public int pending() {
        return pendingCount.get();
    }

    /** Pending rows at which the ledger is saturated. */
    public int capacity() {
        return capacity;
    }

    /** True while so many rows are pending that no more completions should be served. */
    public boolean saturated() {
        return pendingCount.get() >= capacity;
    }

    /**
     * Writes what is pending, for at most the grace period, then stops the writer. Rows still unwritten are reported
     * {@link UsageEvents#unwritten unwritten} with their content, so that they can be recovered by hand (writing them
     * again is harmless: the store skips request ids it already has).
     *
     * @return the rows that could not be written
     */
    public List<UsageRecord> close(Duration grace) throws InterruptedException {
        closing = true;
        lock.lock();
        try {
            rowsArrived.signal();
        } finally {
            lock.unlock();
        }
        if (writer.isAlive() && !writer.join(grace)) {
            writer.interrupt();
            // an interrupted write gives up at once on a virtual thread; the bound is for a store driver that does not
            if (!writer.join(STOP_AFTER_INTERRUPT)) {
                LOG.log(System.Logger.Level.WARNING, "the usage writer did not stop within {0} ms of being interrupted",
                        STOP_AFTER_INTERRUPT.toMillis());
            }
        }
        List<UsageRecord> unwritten;
        lock.lock();
        try {
            closed = true;
            unwritten = List.copyOf(pending);
        } finally {
            lock.unlock();
        }
        if (!unwritten.isEmpty()) {
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
                List<UsageRecord> rows = nextRows();
                if (rows.isEmpty()) {
                    return;
                }
                try {
                    write(rows);
                    backoff = firstBackoff;
                } catch (UsageWriteException.Permanent refused) {
                    backoff = isolateRefused(rows, refused) ? firstBackoff : sleep(backoff);
                } catch (UsageWriteException.Recoverable away) {
                    backoff = sleep(backoff);
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
    private List<UsageRecord> nextRows() throws InterruptedException {
        lock.lock();
        try {
            while (pending.isEmpty()) {
                if (closing) {
                    return List.of();
                }
                rowsArrived.await();
            }
            List<UsageRecord> rows = new ArrayList<>(Math.min(rowsPerWrite, pending.size()));
            for (UsageRecord row : pending) {
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

    private void write(List<UsageRecord> rows) {
        long started = ticker.nanoTime();
        try {
            repository.record(rows);
        } catch (UsageWriteException failure) {
            report(() -> events.writeFailed(failure));
            throw failure;
        } catch (RuntimeException unexpected) {
            var failure = new UsageWriteException.Recoverable("unexpected failure: " + unexpected, unexpected);
            report(() -> events.writeFailed(failure));
            throw failure;
        }
        removeOldest(rows.size());
        long latency = ticker.nanoTime() - started;
        report(() -> events.written(rows.size(), Duration.ofNanos(latency)));
    }

    /**
     * After the store refused a write of these (oldest pending) rows, finds the rows it refuses by halving: one bad
     * row among a thousand costs about twenty writes, not a thousand. Refused rows are logged and dropped; the others
     * are written.
     *
     * @return false when the store went away meanwhile; the rows not yet settled stay pending
     */
    private boolean isolateRefused(List<UsageRecord> rows, UsageWriteException.Permanent refused) {
        if (rows.size() == 1) {
            List<UsageRecord> row = List.copyOf(rows);
            removeOldest(1);
            report(() -> events.rejected(row, refused));
            return true;
        }
        int half = rows.size() / 2;
        return writeOrIsolate(rows.subList(0, half)) && writeOrIsolate(rows.subList(half, rows.size()));
    }

    private boolean writeOrIsolate(List<UsageRecord> rows) {
        try {
            write(rows);
            return true;
        } catch (UsageWriteException.Permanent refused) {
            return isolateRefused(rows, refused);
        } catch (UsageWriteException.Recoverable away) {
            return false;
        }
    }

    private void removeOldest(int rows) {
        lock.lock();
        try {
            for (int i = 0; i < rows; i++) {
                pending.pollFirst();
            }
            pendingCount.addAndGet(-rows);
        } finally {
            lock.unlock();
        }
    }

    private Duration sleep(Duration backoff) throws InterruptedException {
        ticker.sleep(backoff);
        Duration doubled = backoff.multipliedBy(2);
        return doubled.compareTo(maxBackoff) > 0 ? maxBackoff : doubled;
    }
}
