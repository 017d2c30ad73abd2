package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.WorkerException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Each batch goes to the workers of its model; a batch without a model to the default, the first. */
class ModelRouterTest {

    private final ScriptedWorker small = new ScriptedWorker("http://small");
    private final ScriptedWorker large = new ScriptedWorker("http://large");
    private final ModelRouter router = new ModelRouter(inOrder(small, large));

    private static Map<String, ScriptedWorker> inOrder(ScriptedWorker first, ScriptedWorker second) {
        Map<String, ScriptedWorker> byModel = new LinkedHashMap<>();
        byModel.put("small", first);
        byModel.put("large", second);
        return byModel;
    }

    private static Batch batch(String model) {
        return new Batch(1, new GenerationParameters(model, 8, null, null, List.of(), null), List.of("p"));
    }

    @Test
    void eachBatchGoesToTheWorkersOfItsModel() {
        assertThat(router.complete(batch("large"))).hasSize(1);
        assertThat(router.complete(batch("small"))).hasSize(1);
        assertThat(router.complete(batch(null))).hasSize(1);

        assertThat(large.batches).extracting(b -> b.parameters().model()).containsExactly("large");
        assertThat(small.batches).extracting(b -> b.parameters().model()).containsExactly("small", null);
        assertThat(router.model()).isEqualTo("small");
    }

    @Test
    void aModelWithoutWorkersIsABugNotTheCallersFault() {
        assertThatThrownBy(() -> router.complete(batch("medium")))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("no workers are configured for model medium");
        assertThat(small.batches).isEmpty();
        assertThat(large.batches).isEmpty();
    }

    @Test
    void aRouterNeedsAModel() {
        assertThatThrownBy(() -> new ModelRouter(Map.of())).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void closingTheRouterClosesTheWorkersOfEveryModelThatCanBeClosed() {
        // Given a pool for one model that notes being closed, and a simulation for another
        var closed = new java.util.concurrent.atomic.AtomicInteger();
        var closing = new SimulatedWorkerCloseable() {
            @Override
            public void close() {
                closed.incrementAndGet();
            }
        };
        Map<String, dev.batchgateway.completion.WorkerApi> byModel = new LinkedHashMap<>();
        byModel.put("pooled", closing);
        byModel.put("simulated", new SimulatedWorker(java.time.Duration.ZERO));
        var router = new ModelRouter(byModel);

        // When the router closes, then the pool was closed once, and the models are still listed in order
        router.close();
        assertThat(closed).hasValue(1);
        assertThat(router.byModel()).containsOnlyKeys("pooled", "simulated");
        assertThat(router.byModel().keySet()).containsExactly("pooled", "simulated");
    }

    @Test
    void aWorkerThatFailsToCloseIsReported() {
        Map<String, dev.batchgateway.completion.WorkerApi> byModel = new LinkedHashMap<>();
        byModel.put("m", new ClosingBadly());
        var router = new ModelRouter(byModel);

        assertThatThrownBy(router::close).isInstanceOf(IllegalStateException.class)
                .hasMessage("could not close the workers of a model").hasCauseInstanceOf(java.io.IOException.class);
    }

    @Test
    void aRouterPassesTheBatchesProgressToTheWorkersOfItsModel() {
        var progress = dev.batchgateway.completion.BatchProgress.IGNORED;
        var seen = new java.util.concurrent.atomic.AtomicReference<dev.batchgateway.completion.BatchProgress>();
        var worker = new SimulatedWorkerCloseable() {
            @Override
            public List<dev.batchgateway.completion.WorkerOutcome> complete(
                    Batch batch, dev.batchgateway.completion.BatchProgress given) {
                seen.set(given);
                return List.of(SimulatedWorker.generate("p", 4));
            }

            @Override
            public void close() {}
        };
        var router = new ModelRouter(Map.of("w", worker));

        assertThat(router.complete(batch(null), progress)).hasSize(1);
        assertThat(seen.get()).isSameAs(progress);
    }

    /** A worker whose close fails. */
    private static final class ClosingBadly extends SimulatedWorkerCloseable {
        @Override
        public void close() throws java.io.IOException {
            throw new java.io.IOException("stuck");
        }
    }

    private abstract static class SimulatedWorkerCloseable implements dev.batchgateway.completion.WorkerApi, AutoCloseable {
        @Override
        public List<dev.batchgateway.completion.WorkerOutcome> complete(Batch batch) {
            return List.of();
        }

        @Override
        public String model() {
            return "m";
        }
    }
}
