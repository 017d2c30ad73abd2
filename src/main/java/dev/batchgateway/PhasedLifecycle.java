package dev.batchgateway;

import org.springframework.context.SmartLifecycle;

/**
 * One thing to do when the context starts and one when it stops, in a lifecycle phase: Spring starts the lowest phase
 * first and stops the highest first, so the phase says what must be up before it and what must still be up after it.
 */
final class PhasedLifecycle implements SmartLifecycle {

    /** What to do; interrupted, it is given up and the interrupt kept. */
    interface Action {
        void run() throws InterruptedException;
    }

    private final int phase;
    private final Action onStart;
    private final Action onStop;
    private final boolean pauseable;
    private volatile boolean running;

    private PhasedLifecycle(int phase, Action onStart, Action onStop, boolean pauseable) {
        this.phase = phase;
        this.onStart = onStart;
        this.onStop = onStop;
        this.pauseable = pauseable;
    }

    /** Started again when a paused context resumes (Spring's test context cache pauses the contexts not in use). */
    static PhasedLifecycle of(int phase, Action onStart, Action onStop) {
        return new PhasedLifecycle(phase, onStart, onStop, true);
    }

    /** A step of the shutdown: one way (a start cannot undo it), so a context pause must not run it. */
    static PhasedLifecycle shutdownStep(int phase, Action step) {
        return new PhasedLifecycle(phase, () -> {}, step, false);
    }

    @Override
    public void start() {
        run(onStart);
        running = true;
    }

    @Override
    public void stop() {
        try {
            run(onStop);
        } finally {
            running = false;
        }
    }

    private static void run(Action action) {
        try {
            action.run();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    @Override
    public boolean isPauseable() {
        return pauseable;
    }

    @Override
    public int getPhase() {
        return phase;
    }
}
