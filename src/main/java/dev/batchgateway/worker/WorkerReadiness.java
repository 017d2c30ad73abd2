package dev.batchgateway.worker;

import java.util.Map;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;

/** The {@code worker} component of readiness: UP while at least one worker of the pool answers its health check. */
final class WorkerReadiness implements HealthIndicator {

    private final WorkerPool pool;

    WorkerReadiness(WorkerPool pool) {
        this.pool = pool;
    }

    @Override
    public Health health() {
        Map<String, Boolean> workers = pool.health();
        var health = workers.containsValue(true) ? Health.up() : Health.down();
        workers.forEach((url, healthy) -> health.withDetail(url, healthy ? "UP" : "DOWN"));
        return health.build();
    }
}
