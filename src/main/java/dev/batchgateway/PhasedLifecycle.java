package dev.batchgateway;

import org.springframework.context.SmartLifecycle;

/**
 * One thing to do when the context starts and one when it stops, in a lifecycle phase: Spring starts the lowest phase
 * first and stops the highest first, so the phase says what must be up before it and what must still be up after it.
 */
final class PhasedLifecycle implements SmartLifecycle {

    private final int phase;
    private final Runnable onStart;
    private final Runnable onStop;
    private volatile boolean running;

    private PhasedLifecycle(int phase, Runnable onStart, Runnable onStop) {
        this.phase = phase;
        this.onStart = onStart;
        this.onStop = onStop;
    }

    static PhasedLifecycle of(int phase, Runnable onStart, Runnable onStop) {
        return new PhasedLifecycle(phase, onStart, onStop);
    }

    /** Also when a paused context resumes (Spring's test context cache pauses the contexts not in use). */
    @Override
    public void start() {
        onStart.run();
        running = true;
    }

    @Override
    public void stop() {
        try {
            onStop.run();
        } finally {
            running = false;
        }
    }

    @Override
    public boolean isRunning() {
        return running;
    }

    @Override
    public int getPhase() {
        return phase;
    }
}
