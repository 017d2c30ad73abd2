package dev.batchgateway.completion;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Takes the usage of served completions off the request path and writes it to the {@link UsageRepository},
 * coalescing the rows of batches that finish together into one write, and keeping rows in memory with exponential
 * back-off while the store is away. Rows are dropped only when the store refuses them for what they contain, and then
 * logged in full.
 *
 * <p>While more than {@code capacity} rows are pending the ledger reports itself {@link #saturated()}, and the gateway
 * stops taking requests rather than serve completions it cannot bill.
 */
public final class UsageLedger {

    private static final System.Logger LOG = System.getLogger(UsageLedger.class.getName());

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

    /** Queues the rows for writing; never blocks on the store and never fails. */
    public void record(List<UsageRecord> rows) {
        if (rows.isEmpty()) {
            return;
        }
        lock.lock();
        try {
            pending.addAll(rows);
            pendingCount.addAndGet(rows.size());
            rowsArrived.signal();
        } finally {
            lock.unlock();
        }
    }

    /** Rows served but not yet in the store. */
    public int pending() {
        return pendingCount.get();
    }

    /** True while so many rows are pending that no more completions should be served. */
    public boolean saturated() {
        return pendingCount.get() >= capacity;
    }

    /**
     * Writes what is pending, for at most the grace period, then stops the writer. Rows still unwritten are logged
     * with their content, so that they can be recovered by hand.
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
            writer.join();
        }
        List<UsageRecord> unwritten;
        lock.lock();
        try {
            unwritten = List.copyOf(pending);
        } finally {
            lock.unlock();
        }
        if (!unwritten.isEmpty()) {
            LOG.log(System.Logger.Level.ERROR, "{0} usage rows could not be written before shutdown: {1}",
                    unwritten.size(), unwritten);
        }
        return unwritten;
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
                    backoff = writeOneByOne(rows) ? firstBackoff : sleep(backoff);
                } catch (UsageWriteException.Recoverable away) {
                    backoff = sleep(backoff);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
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
            events.writeFailed(failure);
            LOG.log(System.Logger.Level.WARNING, "writing {0} usage rows failed ({1}); {2} rows pending",
                    rows.size(), failure.getMessage(), pendingCount.get());
            throw failure;
        } catch (RuntimeException unexpected) {
            var failure = new UsageWriteException.Recoverable("unexpected failure: " + unexpected, unexpected);
            events.writeFailed(failure);
            LOG.log(System.Logger.Level.ERROR, "writing usage rows failed unexpectedly; will retry", unexpected);
            throw failure;
        }
        events.written(rows.size(), Duration.ofNanos(ticker.nanoTime() - started));
        removeOldest(rows.size());
    }

    /**
     * After the store refused a write, finds the rows it refuses by writing them one at a time.
     *
     * @return false when the store went away meanwhile
     */
    private boolean writeOneByOne(List<UsageRecord> rows) {
        for (UsageRecord row : rows) {
            try {
                write(List.of(row));
            } catch (UsageWriteException.Permanent refused) {
                LOG.log(System.Logger.Level.ERROR, "the usage store refused a row for good, dropping it: {0} ({1})",
                        row, refused.getMessage());
                events.rejected(List.of(row));
                removeOldest(1);
            } catch (UsageWriteException.Recoverable away) {
                return false;
            }
        }
        return true;
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
        TimeUnit.NANOSECONDS.sleep(backoff.toNanos());
        Duration doubled = backoff.multipliedBy(2);
        return doubled.compareTo(maxBackoff) > 0 ? maxBackoff : doubled;
    }
}
