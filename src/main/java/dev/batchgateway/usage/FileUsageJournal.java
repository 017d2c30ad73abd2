package dev.batchgateway.usage;

import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.UsageJournal;
import dev.batchgateway.completion.UsageJournalException;
import dev.batchgateway.completion.UsageOutcome;
import dev.batchgateway.completion.BudgetCharge;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageRepository;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.StringJoiner;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The usage journal as files: one directory per instance under a base directory, holding an {@code owner.lock} the
 * instance keeps locked while it runs, and segments of one line per row, each line with its CRC-32 (a line torn by a
 * crash mid-append is skipped: its rows were never acknowledged). Every append is one write and one
 * {@link FileChannel#force fsync}. The segments together are bounded by {@code maxBytes}.
 *
 * <p>At start the journal adopts the directories of instances that are gone (their lock is free: the OS releases it
 * when a process dies, even by SIGKILL) and replays their rows with its own; a directory is deleted once replayed.
 * So an operator recovers a dead instance's journal by starting any gateway with the same base directory.
 */
final class FileUsageJournal implements UsageJournal, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(FileUsageJournal.class);
    private static final String LOCK = "owner.lock";
    private static final String SEGMENT_SUFFIX = ".usage";
    private static final String VERSION = "u3";
    /** Lines of journals written before rows carried their service tier: read as rows of the default tier. */
    private static final String UNTIERED_VERSION = "u2";
    /** Lines of journals written before rows carried budget charges: read as rows of the default tier that charge nothing. */
    private static final String UNCHARGED_VERSION = "u1";
    private static final String STARTING = ".starting-";

    private final Path directory;
    private final long maxBytes;
    private final FileChannel lockChannel;
    private final FileLock ownLock;
    /** Directories of dead instances, with the lock this instance now holds on each, until they are replayed. */
    private final List<Adopted> adopted = new ArrayList<>();

    private final ReentrantLock lock = new ReentrantLock();
    private FileChannel current; // guarded by lock; null until the next append opens a segment
    private long nextSegment; // guarded by lock
    private long bytes; // guarded by lock: the size of this instance's segments
    private final List<Path> sealed = new ArrayList<>(); // guarded by lock: this instance's segments, oldest first
    private volatile boolean empty;
    private boolean closed; // guarded by lock

    /**
     * Opens this instance's directory under {@code base} (created if missing) and adopts those of dead instances.
     *
     * @throws UncheckedIOException when the base directory cannot be created or written
     */
    FileUsageJournal(Path base, long maxBytes) {
        if (maxBytes < 1) {
            throw new IllegalArgumentException("the journal's size bound must be positive, was " + maxBytes);
        }
        this.maxBytes = maxBytes;
        try {
            Files.createDirectories(base);
            // locked before it is visible under its name: an instance starting beside this one must not take it for dead
            String name = instanceName();
            Path starting = Files.createDirectory(base.resolve(STARTING + name));
            this.lockChannel = FileChannel.open(starting.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            this.ownLock = lockChannel.tryLock();
            if (ownLock == null) {
                throw new IOException("cannot lock " + starting.resolve(LOCK));
            }
            this.directory = Files.move(starting, base.resolve(name), StandardCopyOption.ATOMIC_MOVE);
            adoptDeadInstances(base);
        } catch (IOException e) {
            throw new UncheckedIOException("the usage journal cannot use " + base + ": " + e.getMessage(), e);
        }
        this.empty = adopted.isEmpty();
    }

    /** This instance's own directory. */
    Path directory() {
        return directory;
    }

    @Override
    public void append(List<UsageRecord> rows) {
        if (rows.isEmpty()) {
            return;
        }
        var text = new StringBuilder(rows.size() * 160);
        rows.forEach(row -> text.append(line(row)));
        ByteBuffer buffer = ByteBuffer.wrap(text.toString().getBytes(StandardCharsets.UTF_8));
        int size = buffer.remaining();
        lock.lock();
        try {
            if (closed) {
                throw new UsageJournalException("the usage journal is closed", null);
            }
            if (bytes + size > maxBytes) {
                throw new UsageJournalException("the usage journal in " + directory + " is full (" + bytes + " of "
                        + maxBytes + " bytes; it empties when the database is back)", null);
            }
            try {
                if (current == null) {
                    Path segment = directory.resolve(segmentName(nextSegment++));
                    current = FileChannel.open(segment, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                    sealed.add(segment);
                    forceDirectory(); // the new file's name must survive a power cut as well as its content

                }
                while (buffer.hasRemaining()) {
                    current.write(buffer);
                }
                current.force(false);
            } catch (IOException e) {
                // a write that failed half-way leaves a torn line: the next append starts a segment of its own
                sealCurrent();
                bytes += size - buffer.remaining();
                throw new UsageJournalException("the usage journal in " + directory + " cannot be written: " + e, e);
            }
            bytes += size;
            empty = false;
        } finally {
            lock.unlock();
        }
    }

    @Override
    public boolean isEmpty() {
        return empty;
    }

    @Override
    public int replay(int rowsPerWrite, UsageRepository store) {
        List<Path> segments;
        List<Adopted> dead;
        lock.lock();
        try {
            sealCurrent();
            segments = List.copyOf(sealed);
            dead = List.copyOf(adopted);
        } finally {
            lock.unlock();
        }
        int replayed = 0;
        for (Adopted instance : dead) {
            for (Path segment : instance.segments()) {
                replayed += replaySegment(segment, rowsPerWrite, store);
            }
            instance.forget();
            LOG.info("usage journal of a dead instance replayed and removed: {}", instance.directory());
            lock.lock();
            try {
                adopted.remove(instance);
            } finally {
                lock.unlock();
            }
        }
        for (Path segment : segments) {
            long size = size(segment);
            replayed += replaySegment(segment, rowsPerWrite, store);
            lock.lock();
            try {
                sealed.remove(segment);
                bytes -= size;
                empty = sealed.isEmpty() && adopted.isEmpty();
            } finally {
                lock.unlock();
            }
        }
        lock.lock();
        try {
            empty = sealed.isEmpty() && adopted.isEmpty();
        } finally {
            lock.unlock();
        }
        if (replayed > 0) {
            LOG.info("{} usage rows replayed from the journal to the database", replayed);
        }
        return replayed;
    }

    /** Closes the journal; this instance's directory is removed when it holds no row. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            sealCurrent();
            try {
                boolean nothingLeft = sealed.isEmpty();
                if (nothingLeft) {
                    Files.deleteIfExists(directory.resolve(LOCK));
                }
                ownLock.release();
                lockChannel.close();
                for (Adopted instance : adopted) {
                    instance.release();
                }
                if (nothingLeft) {
                    Files.deleteIfExists(directory);
                } else {
                    LOG.warn("the usage journal in {} still holds rows the database has not got: they are replayed by the "
                            + "next gateway started with GATEWAY_USAGE_JOURNAL_DIR={}", directory, directory.getParent());
                }
            } catch (IOException e) {
                LOG.warn("closing the usage journal in {} failed: {}", directory, e.toString());
            }
        } finally {
            lock.unlock();
        }
    }

    /** Reads one segment and hands its rows to the store; the segment is deleted once the store took them all. */
    private static int replaySegment(Path segment, int rowsPerWrite, UsageRepository store) {
        if (!Files.exists(segment)) {
            return 0; // replayed by an earlier pass that failed on a later segment
        }
        List<UsageRecord> rows = read(segment);
        for (int from = 0; from < rows.size(); from += rowsPerWrite) {
            store.record(rows.subList(from, Math.min(rows.size(), from + rowsPerWrite)));
        }
        try {
            Files.deleteIfExists(segment);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete the replayed journal segment " + segment, e);
        }
        return rows.size();
    }

    private static List<UsageRecord> read(Path segment) {
        List<String> lines;
        try {
            lines = Files.readAllLines(segment, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException torn) {
            lines = new String(readBytes(segment), StandardCharsets.UTF_8).lines().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the journal segment " + segment, e);
        }
        List<UsageRecord> rows = new ArrayList<>(lines.size());
        for (String line : lines) {
            UsageRecord row = parse(line);
            if (row == null) {
                LOG.warn("skipped a torn or damaged line in the usage journal segment {} (a crash during its append, "
                        + "before any answer depended on it): {}", segment, line);
            } else {
                rows.add(row);
            }
        }
        return rows;
    }

    private static byte[] readBytes(Path segment) {
        try {
            return Files.readAllBytes(segment);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the journal segment " + segment, e);
        }
    }

    /**
     * {@code u3 <id> <user> <prompt> <completion> <model, URL-encoded> <served-at> <outcome> <charges> <service tier>
     * <crc32>}, tab-separated; the charges comma-separated, each {@code account:holder:hold-since:window:window-start:amount},
     * or {@code -} for none. Older lines lack the tier ({@code u2}) and the charges too ({@code u1}).
     */
    static String line(UsageRecord row) {
        String fields = String.join("\t",
                VERSION,
                row.requestId().toString(),
                Long.toString(row.userId()),
                Integer.toString(row.usage().promptTokens()),
                Integer.toString(row.usage().completionTokens()),
                URLEncoder.encode(row.model(), StandardCharsets.UTF_8),
                row.servedAt().toString(),
                row.outcome().word(),
                charges(row.charges()),
                row.serviceTier().wireName());
        return fields + "\t" + crc(fields) + "\n";
    }

    /** The row of a line, or null when the line is torn or damaged. */
    static UsageRecord parse(String line) {
        int last = line.lastIndexOf('\t');
        if (last < 0 || !line.substring(last + 1).equals(crc(line.substring(0, last)))) {
            return null;
        }
        String[] field = line.substring(0, last).split("\t", -1);
        boolean tiered = field.length == 10 && field[0].equals(VERSION);
        boolean charged = tiered || field.length == 9 && field[0].equals(UNTIERED_VERSION);
        if (!charged && !(field.length == 8 && field[0].equals(UNCHARGED_VERSION))) {
            return null;
        }
        try {
            return new UsageRecord(
                    UUID.fromString(field[1]),
                    Long.parseLong(field[2]),
                    new TokenUsage(Integer.parseInt(field[3]), Integer.parseInt(field[4])),
                    URLDecoder.decode(field[5], StandardCharsets.UTF_8),
                    Instant.parse(field[6]),
                    UsageOutcome.valueOf(field[7].toUpperCase(Locale.ROOT)),
                    tiered ? ServiceTier.named(field[9]).orElseThrow() : ServiceTier.DEFAULT,
                    charged ? charges(field[8]) : List.of());
        } catch (RuntimeException damaged) {
            return null;
        }
    }

    private static String charges(List<BudgetCharge> charges) {
        if (charges.isEmpty()) {
            return "-";
        }
        StringJoiner joined = new StringJoiner(",");
        charges.forEach(charge -> joined.add(charge.account() + ":" + charge.holder() + ":" + charge.holdSince() + ":"
                + charge.window() + ":" + charge.windowStart() + ":" + charge.amount()));
        return joined.toString();
    }

    private static List<BudgetCharge> charges(String field) {
        if (field.equals("-")) {
            return List.of();
        }
        List<BudgetCharge> charges = new ArrayList<>();
        for (String charge : field.split(",")) {
            // the window's start is an ISO instant, with colons of its own: the amount is after the last one
            String[] part = charge.split(":", 5);
            int amountAt = part[4].lastIndexOf(':');
            charges.add(new BudgetCharge(Long.parseLong(part[0]), UUID.fromString(part[1]), Long.parseLong(part[2]), part[3],
                    Instant.parse(part[4].substring(0, amountAt)), Long.parseLong(part[4].substring(amountAt + 1))));
        }
        return charges;
    }

    private static String crc(String fields) {
        var crc = new CRC32();
        crc.update(fields.getBytes(StandardCharsets.UTF_8));
        return Long.toHexString(crc.getValue());
    }

    private void forceDirectory() throws IOException {
        try (FileChannel dir = FileChannel.open(directory, StandardOpenOption.READ)) {
            dir.force(true);
        }
    }

    private void sealCurrent() {
        if (current != null) {
            try {
                current.close();
            } catch (IOException e) {
                LOG.warn("closing a usage journal segment failed: {}", e.toString());
            }
            current = null;
        }
    }

    private void adoptDeadInstances(Path base) throws IOException {
        List<Path> others;
        try (Stream<Path> listed = Files.list(base)) {
            others = listed.filter(Files::isDirectory)
                    .filter(other -> !other.equals(directory) && !other.getFileName().toString().startsWith("."))
                    .sorted()
                    .toList();
        }
        for (Path other : others) {
            FileChannel channel = null;
            try {
                channel = FileChannel.open(other.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                FileLock held = channel.tryLock();
                if (held == null) {
                    channel.close();
                    continue; // its instance is alive
                }
                List<Path> segments = segments(other);
                adopted.add(new Adopted(other, channel, held, segments));
                LOG.info("adopted the usage journal of a dead instance, {} segments to replay: {}", segments.size(), other);
            } catch (OverlappingFileLockException aliveInThisProcess) {
                channel.close();
            } catch (IOException e) {
                if (channel != null) {
                    channel.close();
                }
                LOG.warn("cannot adopt the usage journal in {}: {}", other, e.toString());
            }
        }
    }

    private static List<Path> segments(Path directory) throws IOException {
        try (Stream<Path> listed = Files.list(directory)) {
            return listed.filter(path -> path.getFileName().toString().endsWith(SEGMENT_SUFFIX)).sorted().toList();
        }
    }

    private static long size(Path segment) {
        try {
            return Files.size(segment);
        } catch (IOException e) {
            return 0;
        }
    }

    private static String segmentName(long number) {
        return String.format(Locale.ROOT, "segment-%012d%s", number, SEGMENT_SUFFIX);
    }

    /** Unique among instances sharing the base directory, readable by an operator: host, process, a random part. */
    private static String instanceName() {
        String host = System.getenv().getOrDefault("HOSTNAME", "host").replaceAll("[^A-Za-z0-9._-]", "_");
        return host + "-" + ProcessHandle.current().pid() + "-"
                + Long.toHexString(ThreadLocalRandom.current().nextLong() & 0xffffffffL);
    }

    /** A dead instance's directory, locked by this instance until its segments are replayed. */
    private record Adopted(Path directory, FileChannel channel, FileLock lock, List<Path> segments) {
        void forget() {
            try {
                Files.deleteIfExists(directory.resolve(LOCK));
                release();
                Files.deleteIfExists(directory);
            } catch (IOException e) {
                LOG.warn("cannot remove the replayed usage journal directory {}: {}", directory, e.toString());
            }
        }

        void release() throws IOException {
            if (channel.isOpen()) {
                lock.release();
                channel.close();
            }
        }
    }
}
