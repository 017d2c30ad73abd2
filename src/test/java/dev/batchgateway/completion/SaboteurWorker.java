package dev.batchgateway.completion;

import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.function.Predicate;

/** A worker that misbehaves on the batches it is told to: throws, hangs until interrupted, or miscounts. */
public class SaboteurWorker extends SpyWorker {

    public enum Sabotage { THROW_UNAVAILABLE, THROW_BAD_ANSWER, THROW_UNEXPECTED, HANG, TOO_FEW_RESULTS, TOO_MANY_RESULTS }

    private final Sabotage sabotage;
    private final Predicate<Batch> target;
    /** Counts down when a hung call ends, because the scheduler interrupted it. */
    public final CountDownLatch abandoned = new CountDownLatch(1);

    public SaboteurWorker(Sabotage sabotage, Predicate<Batch> target) {
        this.sabotage = sabotage;
        this.target = target;
    }

    /** Sabotages every batch. */
    public SaboteurWorker(Sabotage sabotage) {
        this(sabotage, batch -> true);
    }

    /** Sabotages the batches holding this prompt. */
    public static SaboteurWorker on(String prompt, Sabotage sabotage) {
        return new SaboteurWorker(sabotage, batch -> batch.prompts().contains(prompt));
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        List<WorkerOutcome> answers = super.complete(batch);
        if (!target.test(batch)) {
            return answers;
        }
        return switch (sabotage) {
            case THROW_UNAVAILABLE -> throw new WorkerException.Unavailable("connection refused");
            case THROW_BAD_ANSWER -> throw new WorkerException.BadAnswer("status 500");
            case THROW_UNEXPECTED -> throw new IllegalStateException("a bug in the adapter");
            case HANG -> {
                try {
                    new CountDownLatch(1).await();
                    throw new AssertionError("unreachable");
                } catch (InterruptedException e) {
                    abandoned.countDown();
                    throw new WorkerException.TimedOut("interrupted", e);
                }
            }
            case TOO_FEW_RESULTS -> answers.subList(0, answers.size() - 1);
            case TOO_MANY_RESULTS -> {
                var more = new java.util.ArrayList<>(answers);
                more.add(answers.getFirst());
                yield more;
            }
        };
    }
}
