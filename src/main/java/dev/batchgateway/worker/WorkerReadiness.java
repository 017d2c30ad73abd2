package dev.batchgateway.worker;

import dev.batchgateway.completion.WorkerApi;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;

/**
 * The {@code worker} component of readiness: UP while at least one worker can serve a model; each worker's detail is
 * {@code UP} or {@code DOWN: <why>} (unreachable, a refused key, a model it does not serve). With several models, the
 * details are by model, each with its status and its workers: one model whose servers are all down does not take the
 * gateway out of the load balancer, since the others are still served.
 */
final class WorkerReadiness implements HealthIndicator {

    private final Map<String, WorkerApi> byModel;

    WorkerReadiness(Map<String, ? extends WorkerApi> byModel) {
        this.byModel = new LinkedHashMap<>(byModel);
    }

    @Override
    public Health health() {
        if (byModel.size() == 1 && byModel.values().iterator().next() instanceof WorkerPool pool) {
            Map<String, WorkerHealth> workers = pool.health();
            var health = workers.values().stream().anyMatch(WorkerHealth::up) ? Health.up() : Health.down();
            workers.forEach((url, worker) -> health.withDetail(url, worker.describe()));
            return health.build();
        }
        boolean anyUp = false;
        Map<String, Object> models = new LinkedHashMap<>();
        for (var model : byModel.entrySet()) {
            Map<String, Object> detail = new LinkedHashMap<>();
            boolean up = true;
            if (model.getValue() instanceof WorkerPool pool) {
                Map<String, WorkerHealth> workers = pool.health();
                up = workers.values().stream().anyMatch(WorkerHealth::up);
                workers.forEach((url, worker) -> detail.put(url, worker.describe()));
            }
            detail.put("status", up ? "UP" : "DOWN");
            models.put(model.getKey(), detail);
            anyUp |= up;
        }
        return (anyUp ? Health.up() : Health.down()).withDetails(models).build();
    }
}
