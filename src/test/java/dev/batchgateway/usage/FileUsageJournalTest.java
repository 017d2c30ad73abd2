package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.BudgetCharge;
import dev.batchgateway.completion.CompletionRejectedException;
import dev.batchgateway.completion.SpyUsageRepository;
import dev.batchgateway.completion.Ticker;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.UsageEvents;
import dev.batchgateway.completion.UsageJournalException;
import dev.batchgateway.completion.UsageLedger;
import dev.batchgateway.completion.UsageOutcome;
import dev.batchgateway.completion.UsageRecord;
import dev.batchgateway.completion.UsageRepository;
import dev.batchgateway.completion.UsageWriteException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The journal on a real (temporary) directory: what it keeps survives its process, once, within its bound. */
class FileUsageJournalTest {

    private static final Duration SLACK = Duration.ofSeconds(10);

    @TempDir
    Path base;

    private final List<FileUsageJournal> opened = new ArrayList<>();

    @AfterEach
    void closeJournals() {
        opened.forEach(FileUsageJournal::close);
    }

    @Test
    void appendedRowsAreReplayedExactlyAsTheyWereAndTheJournalEmpties() {
        // Given a journal with rows of every outcome and a model name with separators and non-ASCII letters
        var journal = open(1_000_000);
        var rows = List.of(
                row(1, "llama\t3/8b, \"chat\" é", UsageOutcome.SERVED),
                row(2, "m", UsageOutcome.CLIENT_GONE),
                row(3, "m", UsageOutcome.DEADLINE),
                row(4, "m", UsageOutcome.STREAM_FAILED));
        journal.append(rows.subList(0, 2));
        journal.append(rows.subList(2, 4));
        assertThat(journal.isEmpty()).isFalse();

        // When it is replayed
        var store = new SpyUsageRepository();
        int replayed = journal.replay(3, store);

        // Then the store got every row as it was, in order, in writes of at most three, and nothing is left
        assertThat(replayed).isEqualTo(4);
        assertThat(store.rows).containsExactlyElementsOf(rows);
        assertThat(store.calls).allSatisfy(size -> assertThat(size).isLessThanOrEqualTo(3));
        assertThat(journal.isEmpty()).isTrue();
        assertThat(journal.replay(3, store)).isZero();
    }

    @Test
    void aReplayThatFailsHalfWayIsRepeatedWithoutCountingAnyRowTwice() {
        // Given a journal of 25 rows, and a store that skips request ids it has, away after its first write
        var journal = open(1_000_000);
        var rows = rows(25);
        journal.append(rows);
        var store = new IdempotentUsageRepository();
        store.awayAfter(1);

        // When a replay fails half-way
        assertThatThrownBy(() -> journal.replay(10, store)).isInstanceOf(UsageWriteException.Recoverable.class);

        // Then the rows stay journaled; and a later replay delivers them all, each counted once
        assertThat(journal.isEmpty()).isFalse();
        store.awayAfter(Integer.MAX_VALUE);
        journal.replay(10, store);
        assertThat(journal.isEmpty()).isTrue();
        assertThat(store.kept).containsExactlyElementsOf(rows);
    }

    @Test
    void theJournalIsBoundedBySizeAndTakesRowsAgainOnceReplayed() {
        // Given a journal of 2,000 bytes (a row takes about 120)
        var journal = open(2_000);

        // When rows are appended until it is full
        int taken = 0;
        while (true) {
            try {
                journal.append(rows(1));
                taken++;
            } catch (UsageJournalException full) {
                assertThat(full).hasMessageContaining("full");
                break;
            }
            assertThat(taken).as("rows taken by a 2,000-byte journal").isLessThan(100);
        }

        // Then it held some but stayed within its bound
        assertThat(taken).isPositive();
        assertThat(sizeOfSegments(journal.directory())).isLessThanOrEqualTo(2_000);

        // When it is replayed, it takes rows again
        journal.replay(1000, new SpyUsageRepository());
        journal.append(rows(1));
        assertThat(journal.isEmpty()).isFalse();
    }

    @Test
    void aJournalWhoseDirectoryCannotBeWrittenRefusesRows() throws Exception {
        // Given a journal whose directory was removed and replaced by a file
        var journal = open(1_000_000);
        Files.delete(journal.directory().resolve("owner.lock"));
        Files.delete(journal.directory());
        Files.writeString(journal.directory(), "not a directory");

        // When rows are appended, then they are refused
        assertThatThrownBy(() -> journal.append(rows(1)))
                .isInstanceOf(UsageJournalException.class)
                .hasMessageContaining("cannot be written");
    }

    @Test
    void anUnwritableJournalWhileTheStoreIsAwayTurnsCallersAwayWith503() throws Exception {
        // Given a store that is away and a journal that cannot be written
        var journal = open(1_000_000);
        Files.delete(journal.directory().resolve("owner.lock"));
        Files.delete(journal.directory());
        Files.writeString(journal.directory(), "not a directory");
        UsageRepository away = rows -> {
            throw new UsageWriteException.Recoverable("connection refused", null);
        };
        // a minute's back-off: the ledger refuses new requests for as long, longer than any pause of a loaded machine
        var ledger = new UsageLedger(away, journal, 1000, 1000, Duration.ofMinutes(1), Duration.ofMinutes(1),
                Ticker.system(), UsageEvents.NONE).start();
        try {
            // When a completion's row is recorded
            var waiter = ledger.record(rows(1));

            // Then its caller is turned away (503), never answered unbilled, and new requests are refused
            assertThat(waiter).failsWithin(SLACK).withThrowableThat().havingCause()
                    .isInstanceOf(CompletionRejectedException.class);
            assertThat(ledger.saturated()).isTrue();
        } finally {
            ledger.close(Duration.ZERO);
        }
    }

    @Test
    void aJournalLeftByADeadInstanceIsAdoptedAndReplayedByTheNextOneAndItsDirectoryRemoved() {
        // Given an instance that journaled rows and ended before the store was back (its lock is free)
        var dead = open(1_000_000);
        var left = rows(7);
        dead.append(left);
        Path deadDirectory = dead.directory();
        dead.close();
        assertThat(deadDirectory).isDirectory();

        // When a new instance starts on the same base directory
        var next = open(1_000_000);

        // Then it holds the dead instance's rows, replays them, and removes that directory
        assertThat(next.isEmpty()).isFalse();
        var store = new SpyUsageRepository();
        assertThat(next.replay(1000, store)).isEqualTo(7);
        assertThat(store.rows).containsExactlyElementsOf(left);
        assertThat(deadDirectory).doesNotExist();
        assertThat(next.isEmpty()).isTrue();
    }

    @Test
    void aLiveInstancesJournalIsNotAdopted() {
        // Given an instance that is running with rows journaled
        var live = open(1_000_000);
        live.append(rows(3));

        // When another starts on the same base directory
        var other = open(1_000_000);

        // Then the other leaves the live one's rows alone
        assertThat(other.isEmpty()).isTrue();
        var store = new SpyUsageRepository();
        assertThat(other.replay(1000, store)).isZero();
        assertThat(live.isEmpty()).isFalse();
    }

    @Test
    void instancesStartingTogetherOnOneDirectoryNeverTakeEachOtherForDead() throws Exception {
        // Given eight instances starting at once on the same base directory, each with a row journaled
        List<FileUsageJournal> journals;
        try (var starting = java.util.concurrent.Executors.newFixedThreadPool(8)) {
            var opening = IntStream.range(0, 8).mapToObj(i -> starting.submit(() -> open(1_000_000))).toList();
            journals = new ArrayList<>();
            for (var journal : opening) {
                journals.add(journal.get(SLACK.toSeconds(), java.util.concurrent.TimeUnit.SECONDS));
            }
        }
        journals.forEach(journal -> journal.append(rows(1)));

        // When each replays
        var store = new SpyUsageRepository();
        journals.forEach(journal -> journal.replay(1000, store));

        // Then each replayed exactly its own row: none had adopted another's directory
        assertThat(store.rows).hasSize(8);
        assertThat(store.calls).containsOnly(1);
        assertThat(journals).allSatisfy(journal -> assertThat(journal.directory()).isDirectory());
    }

    @Test
    void aLineTornByACrashMidAppendIsSkippedAndTheRestReplayed() throws Exception {
        // Given a dead instance's segment whose last line was cut off mid-write
        var good = rows(2);
        Path deadDirectory = Files.createDirectories(base.resolve("dead-instance"));
        String torn = FileUsageJournal.line(rows(1).getFirst());
        Files.writeString(deadDirectory.resolve("segment-000000000000.usage"),
                FileUsageJournal.line(good.get(0)) + FileUsageJournal.line(good.get(1)) + torn.substring(0, torn.length() / 2),
                StandardCharsets.UTF_8);

        // When a new instance replays it
        var next = open(1_000_000);
        var store = new SpyUsageRepository();
        next.replay(1000, store);

        // Then the whole rows reach the store and the torn one is skipped
        assertThat(store.rows).containsExactlyElementsOf(good);
    }

    @Test
    void rowsKeepTheirBudgetChargesInTheJournalAndLinesOfTheOlderFormatStillReplay() {
        // Given a row charged to two budget windows, and a line written before rows carried charges
        var charged = row(42, "m", UsageOutcome.SERVED).charging(List.of(
                new BudgetCharge(42, UUID.randomUUID(), 7, "day", Instant.parse("2026-12-05T00:00:00Z"), 8),
                new BudgetCharge(-4_611_686_018_427_387_904L, UUID.randomUUID(), 0, "minute", Instant.parse("2026-12-05T10:15:00Z"), 1)));
        var older = row(42, "m", UsageOutcome.SERVED);
        String olderFields = String.join("\t", "u1", older.requestId().toString(), "42", "3", "5", "m",
                older.servedAt().toString(), "served");
        var crc = new java.util.zip.CRC32();
        crc.update(olderFields.getBytes(StandardCharsets.UTF_8));

        // When their lines are read back
        var read = FileUsageJournal.parse(FileUsageJournal.line(charged).stripTrailing());
        var readOlder = FileUsageJournal.parse(olderFields + "\t" + Long.toHexString(crc.getValue()));

        // Then the charged row is whole, charges included, and the older one charges nothing
        assertThat(read).isEqualTo(charged);
        assertThat(readOlder).isEqualTo(older);
    }

    @Test
    void rowsKeepTheirServiceTierAndLinesOfEveryOlderFormatReplayFromADeadInstancesJournalInTheDefaultTier() throws Exception {
        // Given a dead instance's segment with a flex row of today's format, a charged row of the format before tiers
        // (u2) and a row of the format before charges (u1)
        var flex = new UsageRecord(UUID.randomUUID(), 42, new TokenUsage(3, 5), "m",
                Instant.parse("2026-12-05T10:15:30.123456789Z"), UsageOutcome.CLIENT_GONE, ServiceTier.FLEX)
                .charging(List.of(new BudgetCharge(42, UUID.randomUUID(), 7, "day", Instant.parse("2026-12-05T00:00:00Z"), 8)));
        var untiered = row(43, "m", UsageOutcome.SERVED).charging(flex.charges());
        var uncharged = row(44, "m", UsageOutcome.DEADLINE);
        String untieredLine = olderLine("u2", untiered, "42:" + flex.charges().getFirst().holder() + ":7:day:2026-12-05T00:00:00Z:8");
        String unchargedLine = olderLine("u1", uncharged, null);
        Path deadDirectory = Files.createDirectories(base.resolve("dead-instance"));
        Files.writeString(deadDirectory.resolve("segment-000000000000.usage"),
                FileUsageJournal.line(flex) + untieredLine + unchargedLine, StandardCharsets.UTF_8);

        // When a new instance replays it
        var store = new SpyUsageRepository();
        open(1_000_000).replay(1000, store);

        // Then the flex row is whole, and the older lines are rows of the default tier, with their charges or none
        assertThat(FileUsageJournal.line(flex)).startsWith("u3\t").contains("\tflex\t");
        assertThat(store.rows).containsExactly(flex, untiered, uncharged);
        assertThat(store.rows).extracting(UsageRecord::serviceTier)
                .containsExactly(ServiceTier.FLEX, ServiceTier.DEFAULT, ServiceTier.DEFAULT);
    }

    /** A line as an older gateway wrote it: {@code u1} without charges, {@code u2} with them; neither has the tier. */
    private static String olderLine(String version, UsageRecord row, String charges) {
        var fields = new ArrayList<>(List.of(version, row.requestId().toString(), Long.toString(row.userId()),
                Integer.toString(row.usage().promptTokens()), Integer.toString(row.usage().completionTokens()), row.model(),
                row.servedAt().toString(), row.outcome().word()));
        if (charges != null) {
            fields.add(charges);
        }
        String joined = String.join("\t", fields);
        var crc = new java.util.zip.CRC32();
        crc.update(joined.getBytes(StandardCharsets.UTF_8));
        return joined + "\t" + Long.toHexString(crc.getValue()) + "\n";
    }

    @Test
    void aClosedEmptyJournalLeavesNoDirectoryBehind() {
        // Given a journal whose rows were all replayed
        var journal = open(1_000_000);
        journal.append(rows(2));
        journal.replay(1000, new SpyUsageRepository());

        // When it closes, then its directory is gone
        journal.close();
        assertThat(journal.directory()).doesNotExist();
    }

    // --- helpers

    private FileUsageJournal open(long maxBytes) {
        var journal = new FileUsageJournal(base, maxBytes);
        synchronized (opened) {
            opened.add(journal);
        }
        return journal;
    }

    private static long sizeOfSegments(Path directory) {
        try (Stream<Path> files = Files.list(directory)) {
            return files.filter(file -> file.toString().endsWith(".usage")).mapToLong(file -> file.toFile().length()).sum();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static List<UsageRecord> rows(int count) {
        return IntStream.range(0, count).mapToObj(i -> row(42, "m", UsageOutcome.SERVED)).toList();
    }

    private static UsageRecord row(long user, String model, UsageOutcome outcome) {
        return new UsageRecord(UUID.randomUUID(), user, new TokenUsage(3, 5), model,
                Instant.parse("2026-12-05T10:15:30.123456789Z"), outcome, ServiceTier.DEFAULT);
    }

    /** A store that skips request ids it has, like token_usage, and is away after a given number of writes. */
    private static final class IdempotentUsageRepository implements UsageRepository {
        final List<UsageRecord> kept = new ArrayList<>();
        private final Set<UUID> ids = new HashSet<>();
        private final AtomicInteger writesLeft = new AtomicInteger(Integer.MAX_VALUE);

        void awayAfter(int writes) {
            writesLeft.set(writes);
        }

        @Override
        public void record(List<UsageRecord> rows) {
            if (writesLeft.getAndDecrement() <= 0) {
                throw new UsageWriteException.Recoverable("connection refused", null);
            }
            rows.stream().filter(row -> ids.add(row.requestId())).forEach(kept::add);
        }
    }
}
