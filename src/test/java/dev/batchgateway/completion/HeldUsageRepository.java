package dev.batchgateway.completion;

import java.util.List;
import java.util.concurrent.CountDownLatch;

/** Keeps rows like a spy, but holds its calls until {@link #gate} opens; {@link #entered} counts the first call. */
final class HeldUsageRepository extends SpyUsageRepository {

    final CountDownLatch entered = new CountDownLatch(1);
    final CountDownLatch gate = new CountDownLatch(1);

    @Override
    public void record(List<UsageRecord> rows) {
        entered.countDown();
        try {
            gate.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UsageWriteException.Recoverable("interrupted", e);
        }
        super.record(rows);
    }
}
