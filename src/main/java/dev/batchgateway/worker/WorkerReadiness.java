package dev.batchgateway.worker;

import java.util.Map;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;

/**
 * The {@code worker} component of readiness: UP while at least one worker of the pool can serve the model; each
 * worker's detail is {@code UP} or {@code DOWN: <why>} (unreachable, a refused key, a model it does not serve).
 */
final class WorkerReadiness implements HealthIndicator {

    private final WorkerPool pool;

    WorkerReadiness(WorkerPool pool) {
        this.pool = pool;
    }

    @Override
    public Health health() {
        Map<String, WorkerHealth> workers = pool.health();
        var health = workers.values().stream().anyMatch(WorkerHealth::up) ? Health.up() : Health.down();
        workers.forEach((url, worker) -> health.withDetail(url, worker.describe()));
        return health.build();
    }
}
