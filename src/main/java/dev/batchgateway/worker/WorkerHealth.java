package dev.batchgateway.worker;

import java.util.Objects;

/** What a worker's health check found: it can serve the configured model, or why it cannot. */
record WorkerHealth(boolean up, String reason) {

    static final WorkerHealth UP = new WorkerHealth(true, "");

    WorkerHealth {
        Objects.requireNonNull(reason, "reason");
    }

    static WorkerHealth down(String reason) {
        return new WorkerHealth(false, reason);
    }

    /** For readiness details: {@code UP}, or {@code DOWN: <reason>}. */
    String describe() {
        return up ? "UP" : "DOWN: " + reason;
    }
}
