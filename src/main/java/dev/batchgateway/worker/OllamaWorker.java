package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;

/**
 * Ollama: {@code /api/generate} takes one prompt, so a batch fans out as one call per prompt, all at once. Ollama runs
 * them in parallel only up to its {@code OLLAMA_NUM_PARALLEL} (default 1) and queues the rest. Each answer carries its
 * own counts: {@code prompt_eval_count} and {@code eval_count}.
 */
final class OllamaWorker implements RemoteWorker {

    private static final String GENERATE = "/api/generate";

    private final WorkerEndpoint endpoint;
    private final String model;

    OllamaWorker(WorkerEndpoint endpoint, String model) {
        this.endpoint = endpoint;
        this.model = model;
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        int maxTokens = batch.parameters().maxTokens();
        return FanOut.complete(batch.prompts(), prompt -> generate(prompt, maxTokens));
    }

    private WorkerOutcome.Generated generate(String prompt, int maxTokens) {
        JsonNode answer = endpoint.post(GENERATE, Map.of(
                "model", model,
                "prompt", prompt,
                "stream", false,
                "options", Map.of("num_predict", maxTokens)));
        JsonNode text = answer.get("response");
        if (text == null || !text.isString()) {
            throw new WorkerException.BadAnswer("the worker's answer has no response text");
        }
        JsonNode promptTokens = answer.get("prompt_eval_count");
        JsonNode completionTokens = answer.get("eval_count");
        if (!WorkerEndpoint.isCount(promptTokens) || !WorkerEndpoint.isCount(completionTokens)) {
            throw new WorkerException.BadAnswer("the worker's answer has no prompt_eval_count and eval_count");
        }
        return new WorkerOutcome.Generated(
                text.asString(), new TokenUsage(promptTokens.asInt(), completionTokens.asInt()),
                WorkerEndpoint.finishReason(answer.get("done_reason")));
    }

    @Override
    public String model() {
        return model;
    }

    @Override
    public String url() {
        return endpoint.url();
    }

    /** {@code GET /} answers "Ollama is running". */
    @Override
    public boolean healthy() {
        return endpoint.answers("/", "Ollama is running");
    }

    @Override
    public void close() {
        endpoint.close();
    }
}
