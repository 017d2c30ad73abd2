package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.Capacity;
import dev.batchgateway.completion.WorkerApi;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Several models behind one gateway: each batch goes to the workers of its model (the model is part of the batch key,
 * so a batch never mixes two). A batch that names no model goes to the first, the default.
 */
final class ModelRouter implements WorkerApi, AutoCloseable {

    private final Map<String, WorkerApi> byModel;
    private final String defaultModel;

    /** @param byModel the workers of each model, the default first */
    ModelRouter(Map<String, ? extends WorkerApi> byModel) {
        if (byModel.isEmpty()) {
            throw new IllegalArgumentException("a router needs at least one model");
        }
        this.byModel = new LinkedHashMap<>(byModel);
        this.defaultModel = byModel.keySet().iterator().next();
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        return complete(batch, BatchProgress.IGNORED);
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
        return workersOf(batch).complete(batch, progress);
    }

    @Override
    public List<WorkerOutcome> embed(Batch batch) {
        return workersOf(batch).embed(batch);
    }

    private WorkerApi workersOf(Batch batch) {
        String model = batch.parameters().model() != null ? batch.parameters().model() : defaultModel;
        WorkerApi workers = byModel.get(model);
        if (workers == null) {
            // the web adapters refuse unknown models; reaching here is a bug, not a caller's mistake
            throw new WorkerException.BadAnswer("no workers are configured for model " + model);
        }
        return workers;
    }

    /** The slots of the model's own workers: each model's pool counts its own. */
    @Override
    public Optional<Capacity> capacity(String model) {
        WorkerApi workers = byModel.get(model);
        return workers == null ? Optional.empty() : workers.capacity(model);
    }

    /** The default model. */
    @Override
    public String model() {
        return defaultModel;
    }

    /** The workers of each model, the default first. */
    Map<String, WorkerApi> byModel() {
        return byModel;
    }

    @Override
    public void close() {
        byModel.values().forEach(workers -> {
            if (workers instanceof AutoCloseable closeable) {
                try {
                    closeable.close();
                } catch (Exception e) {
                    throw new IllegalStateException("could not close the workers of a model", e);
                }
            }
        });
    }
}
