package dev.batchgateway.worker;

import java.util.Objects;

/**
 * What a worker's health check found: it can serve the configured model, or why it cannot. A worker that answers but
 * refuses the gateway's key or serves another model is {@code misconfigured}: it will not heal by itself, and no batch
 * should reach it; one that does not answer may be busy or restarting.
 */
record WorkerHealth(boolean up, boolean misconfigured, String reason) {

    static final WorkerHealth UP = new WorkerHealth(true, false, "");

    WorkerHealth {
        Objects.requireNonNull(reason, "reason");
    }

    static WorkerHealth down(String reason) {
        return new WorkerHealth(false, false, reason);
    }

    /** Down because the gateway is set up wrong for this server: a refused key, a model it does not serve. */
    static WorkerHealth misconfigured(String reason) {
        return new WorkerHealth(false, true, reason);
    }

    /** For readiness details: {@code UP}, or {@code DOWN: <reason>}. */
    String describe() {
        return up ? "UP" : "DOWN: " + reason;
    }
}
