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
        router.complete(batch("large"));
        router.complete(batch("small"));
        router.complete(batch(null));

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
}
