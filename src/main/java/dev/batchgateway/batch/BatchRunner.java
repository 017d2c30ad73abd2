package dev.batchgateway.batch;

import dev.batchgateway.budget.LimitExceededException;
import dev.batchgateway.completion.Answers;
import dev.batchgateway.completion.Call;
import dev.batchgateway.completion.CallerPresence;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.CompletionsApi;
import dev.batchgateway.completion.Payer;
import dev.batchgateway.completion.Submission;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * This instance's share of the batches' work, another way in to the completion port beside HTTP: it validates new
 * batches, claims chunks of lines from the shared store for a lease, submits each line through {@link CompletionsApi}
 * as a flex-tier request of the batch's owner (so lines batch with each other and fill interactive batches' free
 * seats, and never delay the default tier), records each line's answer once it is durable, and ends batches that are
 * done, past their window or cancelled.
 *
 * <p>Exactly once: a line's request id is fixed when it is first claimed and its usage is written once per id, so a
 * line run again after its instance died (its lease ended) is billed once; its first recorded end is its only one.
 * A line whose owner, or the key its batch was created with ({@link BatchKeys}), is over a limit goes back to the
 * store, and its batch waits until the limit's window resets.
 */
public final class BatchRunner implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(BatchRunner.class.getName());
    private static final Duration SWEEP_EVERY = Duration.ofSeconds(1);
    private static final Duration IDLE_POLL = Duration.ofMillis(200);
    /** How often old lines and expired files are deleted while no batch is unfinished anywhere. */
    private static final Duration IDLE_UPKEEP_EVERY = Duration.ofMinutes(1);
    /** Wakes the results writer at {@link #close}: not a line. */
    private static final BatchStore.Finished CLOSING = new BatchStore.Finished("", -1, false, "");
    private static final Duration STORE_AWAY_BACK_OFF = Duration.ofSeconds(1);
    private static final int CLAIM_MOST = 64;
    private static final int LINES_PER_WRITE = 500;
    private static final int LINES_PER_INSERT = 500;
    /** Errors listed in a failed batch's {@code errors.data}: the first ones, enough to fix a file by. */
    private static final int ERRORS_LISTED = 100;

    private final BatchStore store;
    private final FileStore files;
    private final LineFormat format;
    private final CompletionsApi completions;
    private final BatchKeys keys;
    private final BatchSettings settings;
    private final Clock clock;
    private final UUID instance = UUID.randomUUID();
    private final Semaphore slots;
    private final Semaphore work = new Semaphore(0);
    private final Set<BatchStore.LineRef> inFlight = ConcurrentHashMap.newKeySet();
    /** Batches of lines in flight here that are being cancelled: those lines not yet sent are dropped unsent. */
    private final Set<String> cancelling = ConcurrentHashMap.newKeySet();
    private final BlockingQueue<BatchStore.Finished> finished = new LinkedBlockingQueue<>();
    private final AtomicLong linesRun = new AtomicLong();
    private volatile boolean closed;
    private Thread loop;
    private Thread writer;

    public BatchRunner(BatchStore store, FileStore files, LineFormat format, CompletionsApi completions, BatchKeys keys,
            BatchSettings settings, Clock clock) {
        this.store = store;
        this.files = files;
        this.format = format;
        this.completions = completions;
        this.keys = keys;
        this.settings = settings;
        this.clock = clock;
        this.slots = new Semaphore(settings.linesInFlight());
    }

    /** Starts claiming and running lines; again after {@link #close}, as when a paused application context resumes. */
    public synchronized BatchRunner start() {
        closed = false;
        if (loop == null || !loop.isAlive()) {
            loop = Thread.ofVirtual().name("batch-runner").start(this::loop);
        }
        if (writer == null || !writer.isAlive()) { // still recording the lines of before the pause: it goes on
            writer = Thread.ofVirtual().name("batch-results").start(this::writeResults);
        }
        return this;
    }

    /** A batch was cancelled here: its lines not yet sent are dropped unsent from now on. */
    public void cancelled(String batchId) {
        cancelling.add(batchId);
    }

    /** There is work: a batch was created or cancelled here. */
    public void wake() {
        work.release();
    }

    /** Lines this instance has with the scheduler now. */
    public int linesInFlight() {
        return inFlight.size();
    }

    /** Lines this instance has run to their end since it started. */
    public long linesRun() {
        return linesRun.get();
    }

    private void loop() {
        Instant nextSweep = Instant.MIN;
        Instant nextIdleUpkeep = Instant.MIN;
        while (!closed) {
            try {
                Instant now = clock.instant();
                if (inFlight.isEmpty() && !store.anyUnfinished()) {
                    // nothing to run or end anywhere: one cheap read a second instead of a dozen statements (an idle
                    // gateway's CPU, issue 32); a batch created here wakes the loop at once
                    if (!now.isBefore(nextIdleUpkeep)) {
                        endAndForget();
                        nextIdleUpkeep = now.plus(IDLE_UPKEEP_EVERY);
                    }
                    nextSweep = Instant.MIN;
                    work.tryAcquire(SWEEP_EVERY.toMillis(), TimeUnit.MILLISECONDS);
                    work.drainPermits();
                    continue;
                }
                if (!now.isBefore(nextSweep)) {
                    sweep();
                    nextSweep = now.plus(SWEEP_EVERY);
                }
                int free = slots.availablePermits();
                List<BatchStore.ClaimedLine> claimed = free == 0 ? List.of()
                        : store.claim(instance, Math.min(free, CLAIM_MOST), settings.lease());
                for (BatchStore.ClaimedLine line : claimed) {
                    run(line);
                }
                if (claimed.size() < CLAIM_MOST || slots.availablePermits() == 0) {
                    work.tryAcquire(IDLE_POLL.toMillis(), TimeUnit.MILLISECONDS);
                    work.drainPermits();
                }
            } catch (InterruptedException shutdown) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException storeAway) {
                LOG.log(Level.WARNING, "batch runner: " + storeAway.getMessage() + "; trying again in " + STORE_AWAY_BACK_OFF.toMillis() + " ms");
                try {
                    Thread.sleep(STORE_AWAY_BACK_OFF);
                } catch (InterruptedException shutdown) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** The periodic part: keep this instance's leases, end what is due, forget old files, validate new batches. */
    private void sweep() {
        // each step on its own: one that fails (its statement, the store away) does not hold up the others
        step("renew leases", () -> {
            if (!inFlight.isEmpty()) {
                store.renew(instance, List.copyOf(inFlight), settings.lease());
            }
        });
        step("learn of cancels", () -> {
            Set<String> batchIds = new HashSet<>();
            inFlight.forEach(line -> batchIds.add(line.batchId()));
            cancelling.addAll(store.cancelling(batchIds));
            cancelling.retainAll(batchIds); // batches with nothing left here
        });
        endAndForget();
        // a validator holds its batch for a few leases: a large file takes a while to read
        step("validate", () -> store.claimValidation(instance, settings.lease().multipliedBy(4)).ifPresent(this::validate));
    }

    private void endAndForget() {
        step("end batches", () -> store.finishDue(instance, settings.lease(), settings.fileRetention()));
        step("delete expired files", () -> files.deleteExpired(clock.instant()));
    }

    private static void step(String name, Runnable step) {
        try {
            step.run();
        } catch (RuntimeException failed) {
            LOG.log(Level.WARNING, "batch runner could not " + name + ": " + failed.getMessage());
        }
    }

    /**
     * Checks every line of the batch's input file before anything is sent: a line that is not JSON, names another
     * method or endpoint, lacks or repeats its custom id, or names a model not served fails the batch, naming the line.
     */
    void validate(BatchStore.ToValidate batch) {
        store.clearLines(batch.batchId()); // what a validator that died had added
        Set<String> customIds = new HashSet<>();
        List<LineError> errors = new ArrayList<>();
        List<BatchStore.NewLine> pending = new ArrayList<>();
        int[] number = {0};
        int[] lines = {0};
        files.eachLine(batch.inputFileId(), text -> {
            int line = ++number[0];
            if (text.isBlank()) {
                return;
            }
            try {
                LineFormat.Envelope envelope = format.envelope(text, batch.endpoint());
                if (!customIds.add(envelope.customId())) {
                    errors.add(new LineError("duplicate_custom_id", "The custom_id '" + envelope.customId()
                            + "' is used by an earlier line; each line needs its own", "custom_id", line));
                    return;
                }
                lines[0]++;
                if (errors.isEmpty()) {
                    pending.add(new BatchStore.NewLine(line, envelope.customId(), envelope.url(), envelope.body()));
                    if (pending.size() == LINES_PER_INSERT) {
                        store.addLines(batch.batchId(), pending);
                        pending.clear();
                    }
                }
            } catch (LineFormat.InvalidLineException invalid) {
                errors.add(invalid.at(line));
            }
        });
        if (errors.isEmpty() && lines[0] == 0) {
            errors.add(new LineError("empty_file", "The input file holds no requests", "input_file_id", null));
        }
        if (!errors.isEmpty()) {
            store.clearLines(batch.batchId());
            store.fail(batch.batchId(), errors.subList(0, Math.min(errors.size(), ERRORS_LISTED)));
            return;
        }
        if (!pending.isEmpty()) {
            store.addLines(batch.batchId(), pending);
        }
        store.start(batch.batchId(), lines[0]);
        work.release();
    }

    /** Submits one claimed line as a flex-tier request of its batch's owner, or records the endpoint's refusal. */
    private void run(BatchStore.ClaimedLine line) {
        var ref = new BatchStore.LineRef(line.batchId(), line.line());
        slots.acquireUninterruptibly(); // never waits: no more lines are claimed than there are free slots
        inFlight.add(ref);
        LineFormat.Reading reading;
        try {
            reading = format.read(line.url(), line.body(), line.user(), line.requestId());
        } catch (RuntimeException refused) {
            reading = new LineFormat.Reading.Refused(format.failure(refused));
        }
        switch (reading) {
            case LineFormat.Reading.Refused refused -> ended(line, false, refused.refusal());
            case LineFormat.Reading.Asks asks -> {
                Payer payer;
                try {
                    switch (keys.standing(line.user(), line.keyId(), asks.request().parameters().model())) {
                        case BatchKeys.Standing.Runs runs -> payer = runs.payer();
                        case BatchKeys.Standing.Refused refused -> { // as the endpoint refuses the key's request
                            ended(line, false, format.failure(refused.why()));
                            return;
                        }
                    }
                } catch (RuntimeException away) { // the key cannot be told now: try again shortly
                    LOG.log(Level.FINE, "batch line put back, its key not told: " + away.getMessage());
                    putBack(line, clock.instant().plus(STORE_AWAY_BACK_OFF.multipliedBy(5)));
                    return;
                }
                Answers answers;
                try {
                    // the scheduler asks just before it seats the line: once its batch is cancelling, it is dropped unsent
                    CallerPresence batchGoesOn = () -> !cancelling.contains(line.batchId());
                    answers = completions.submit(new Call(payer, List.of(asks.request()),
                            Submission.whole(ChronoUnit.FOREVER.getDuration(), batchGoesOn)));
                } catch (LimitExceededException over) {
                    // the batch waits for the window rather than failing its lines
                    putBack(line, over.resetsAt());
                    return;
                } catch (CompletionRejectedException full) {
                    putBack(line, clock.instant().plus(atLeastASecond(full.retryAfter())));
                    return;
                } catch (RuntimeException away) { // the budget store away: try again shortly
                    LOG.log(Level.FINE, "batch line put back: " + away.getMessage());
                    putBack(line, clock.instant().plus(STORE_AWAY_BACK_OFF.multipliedBy(5)));
                    return;
                }
                answers.only().whenComplete((completion, failure) -> {
                    if (failure == null) {
                        ended(line, true, new LineFormat.Answer(200, asks.answer().apply(completion)));
                    } else if (cancelling.contains(line.batchId()) && Answers.failureOf(failure) instanceof CancellationException) {
                        notRun(line); // dropped unsent: a cancelled batch's files hold only the lines that ran
                    } else {
                        ended(line, false, format.failure(Answers.failureOf(failure)));
                    }
                });
            }
        }
    }

    private static Duration atLeastASecond(Duration wait) {
        return wait == null || wait.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : wait;
    }

    private void putBack(BatchStore.ClaimedLine line, Instant notBefore) {
        var ref = new BatchStore.LineRef(line.batchId(), line.line());
        try {
            store.putBack(List.of(ref), line.batchId(), notBefore);
        } finally {
            inFlight.remove(ref); // not put back (the store away): its lease ends, and it is claimed again
            slots.release();
        }
    }

    /** A line of a cancelled batch that was never sent: back to waiting, which it does for ever (nothing claims it). */
    private void notRun(BatchStore.ClaimedLine line) {
        try {
            putBack(line, clock.instant());
        } catch (RuntimeException away) { // its lease ends instead, and the batch is cancelled then
            LOG.log(Level.FINE, "a cancelled batch's line not put back: " + away.getMessage());
        }
    }

    /** A line's end, recorded by the writer; its slot is free once the record is durable. */
    private void ended(BatchStore.ClaimedLine line, boolean succeeded, LineFormat.Answer answer) {
        String result;
        try {
            result = format.resultLine(line.requestId(), line.customId(), answer);
        } catch (RuntimeException unwritable) {
            result = format.resultLine(line.requestId(), line.customId(), format.failure(unwritable));
            succeeded = false;
        }
        finished.add(new BatchStore.Finished(line.batchId(), line.line(), succeeded, result));
    }

    /** Writes lines' ends in groups (one round trip for many), then frees their slots. */
    private void writeResults() {
        List<BatchStore.Finished> group = new ArrayList<>();
        while (!(closed && inFlight.isEmpty() && group.isEmpty())) {
            try {
                if (group.isEmpty()) {
                    group.add(finished.take()); // no polling while idle: close() wakes it
                    finished.drainTo(group, LINES_PER_WRITE - 1);
                    group.removeIf(line -> line == CLOSING);
                    if (group.isEmpty()) {
                        continue;
                    }
                }
                store.finish(group);
                for (BatchStore.Finished line : group) {
                    inFlight.remove(new BatchStore.LineRef(line.batchId(), line.line()));
                    slots.release();
                }
                linesRun.addAndGet(group.size());
                group.clear();
                work.release();
            } catch (InterruptedException shutdown) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException storeAway) {
                // the lines keep their leases while this instance lives; their ends are written once the store is back
                LOG.log(Level.WARNING, "batch results not written: " + storeAway.getMessage() + "; trying again");
                try {
                    Thread.sleep(STORE_AWAY_BACK_OFF);
                } catch (InterruptedException shutdown) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /**
     * Stops claiming, and waits up to {@code grace} for the lines in flight to end and their ends to be written; lines
     * still in flight after it are claimed again by another instance once their lease ends.
     */
    public synchronized void close(Duration grace) throws InterruptedException {
        closed = true;
        if (loop != null) {
            loop.interrupt();
            loop.join(grace);
        }
        finished.add(CLOSING);
        if (writer != null && !writer.join(grace)) {
            writer.interrupt();
        }
    }

    @Override
    public void close() throws InterruptedException {
        close(Duration.ofSeconds(5));
    }
}
