package dev.batchgateway.completion;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** Keeps every row it is asked to record, and the size of every call. */
public class SpyUsageRepository implements UsageRepository {

    public final List<UsageRecord> rows = new CopyOnWriteArrayList<>();
    public final List<Integer> calls = new CopyOnWriteArrayList<>();

    @Override
    public void record(List<UsageRecord> rows) {
        calls.add(rows.size());
        this.rows.addAll(rows);
    }
}
