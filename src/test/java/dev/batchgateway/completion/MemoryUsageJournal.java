package dev.batchgateway.completion;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** A journal in memory: keeps what it is given, in order, and hands it to the store on replay. */
public class MemoryUsageJournal implements UsageJournal {

    private final List<UsageRecord> held = new ArrayList<>();
    /** Every row ever appended, replayed or not. */
    public final List<UsageRecord> appended = new CopyOnWriteArrayList<>();

    @Override
    public synchronized void append(List<UsageRecord> rows) {
        held.addAll(rows);
        appended.addAll(rows);
    }

    @Override
    public synchronized boolean isEmpty() {
        return held.isEmpty();
    }

    @Override
    public int replay(int rowsPerWrite, UsageRepository store) {
        List<UsageRecord> rows;
        synchronized (this) {
            rows = List.copyOf(held);
        }
        for (int from = 0; from < rows.size(); from += rowsPerWrite) {
            List<UsageRecord> chunk = rows.subList(from, Math.min(rows.size(), from + rowsPerWrite));
            store.record(chunk);
            synchronized (this) {
                held.subList(0, chunk.size()).clear();
            }
        }
        return rows.size();
    }

    public synchronized List<UsageRecord> held() {
        return List.copyOf(held);
    }
}
