package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.batchgateway.completion.Ticker;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.health.contributor.Status;
import org.junit.jupiter.api.Test;

class WorkerReadinessTest {

    private final ScriptedWorker first = new ScriptedWorker("http://first");
    private final ScriptedWorker second = new ScriptedWorker("http://second");

    @Test
    void onePoolIsReadyWhileOneOfItsWorkersIsUpAndNamesEachWorkersState() {
        // Given a pool of two workers, the second down
        second.healthy = false;
        var readiness = new WorkerReadiness(Map.of("m", pool(first, second)));

        // Then it is up, with each worker's state
        var health = readiness.health();
        assertThat(health.getStatus()).isEqualTo(Status.UP);
        assertThat(health.getDetails()).containsExactly(
                Map.entry("http://first", "UP"), Map.entry("http://second", "DOWN: http://second is scripted to be down"));

        // When the first goes down too, it is down
        first.healthy = false;
        assertThat(readiness.health().getStatus()).isEqualTo(Status.DOWN);
    }

    @Test
    void severalModelsAreReadyWhileOneOfThemIsServedAndEachIsDetailed() {
        // Given one model whose only worker is down, and a simulated one
        first.healthy = false;
        Map<String, Object> byModel = new LinkedHashMap<>();
        var models = new LinkedHashMap<String, dev.batchgateway.completion.WorkerApi>();
        models.put("pooled", pool(first));
        models.put("simulated", new SimulatedWorker(Duration.ZERO));
        var readiness = new WorkerReadiness(models);

        // Then the gateway is ready, with each model's status and its workers
        var health = readiness.health();
        assertThat(health.getStatus()).isEqualTo(Status.UP);
        byModel.put("pooled", Map.of("http://first", "DOWN: http://first is scripted to be down", "status", "DOWN"));
        byModel.put("simulated", Map.of("status", "UP"));
        assertThat(health.getDetails()).isEqualTo(byModel);
    }

    @Test
    void severalModelsWhoseWorkersAreAllDownAreNotReady() {
        first.healthy = false;
        second.healthy = false;
        var models = new LinkedHashMap<String, dev.batchgateway.completion.WorkerApi>();
        models.put("one", pool(first));
        models.put("two", pool(second));

        assertThat(new WorkerReadiness(models).health().getStatus()).isEqualTo(Status.DOWN);
    }

    @Test
    void aSingleModelThatIsNotAPoolIsReady() {
        var health = new WorkerReadiness(Map.of("simulated", new SimulatedWorker(Duration.ZERO))).health();

        assertThat(health.getStatus()).isEqualTo(Status.UP);
        assertThat(health.getDetails()).isEqualTo(Map.of("simulated", Map.of("status", "UP")));
    }

    private static WorkerPool pool(ScriptedWorker... workers) {
        return new WorkerPool(List.of(workers), 4, Duration.ofSeconds(1), Duration.ofSeconds(8), Ticker.system());
    }
}
