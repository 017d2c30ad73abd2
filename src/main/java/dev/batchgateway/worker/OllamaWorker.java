package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;

/**
 * Ollama: {@code /api/generate} takes one prompt, so a batch fans out as one call per prompt, all at once. Ollama runs
 * them in parallel only up to its {@code OLLAMA_NUM_PARALLEL} (default 1) and queues the rest. Each answer carries its
 * own counts: {@code prompt_eval_count} and {@code eval_count}.
 *
 * <p>A batch of chats is one {@code /api/chat} call per conversation, all at once, with the messages as they are (the
 * chat template is the point there) and {@code "think": false}.
 *
 * <p>A batch of inputs to embed is one {@code /api/embed} call with every input in {@code input} (Ollama embeds a list
 * in one call), answered with {@code embeddings} in input order and the call's {@code prompt_eval_count}, shared out
 * over the inputs ({@link EmbeddingCounts}); {@code dimensions} is sent when asked for.
 *
 * <p>Every {@code /api/generate} call is a text completion, as vLLM's {@code /v1/completions} is: {@code "raw": true}, so that Ollama does not
 * wrap the prompt in the model's chat template and system prompt (the caller is billed for the prompt it sent), and
 * {@code "think": false}, so that a thinking model (on by default since Ollama 0.12.4) answers in {@code response}
 * instead of spending the tokens on {@code thinking}. A model that thinks anyway answers with its {@code response}
 * only and is billed the tokens Ollama counts.
 */
final class OllamaWorker implements RemoteWorker {

    private static final String GENERATE = "/api/generate";
    private static final String CHAT = "/api/chat";
    private static final String SHOW = "/api/show";
    private static final String EMBED = "/api/embed";

    private final WorkerEndpoint endpoint;
    private final String model;

    OllamaWorker(WorkerEndpoint endpoint, String model) {
        this.endpoint = endpoint;
        this.model = model;
    }

    /**
     * When a caller streams, every call streams ({@code "stream": true}, one JSON object per line, the counts on the
     * last), and each piece of text goes to its caller as it arrives.
     */
    @Override
    public List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
        if (!progress.streamed()) {
            return RemoteWorker.super.complete(batch, progress);
        }
        Map<String, Object> options = options(batch.parameters());
        if (batch.isChat()) {
            return FanOut.complete(batch.chats(), (i, chat) -> streamOne(CHAT, Map.of(
                    "model", model, "messages", messages(chat), "think", false, "stream", true, "options", options),
                    progress.of(i)));
        }
        return FanOut.complete(batch.prompts(), (i, prompt) -> streamOne(GENERATE, Map.of(
                "model", model, "prompt", prompt, "raw", true, "think", false, "stream", true, "options", options),
                progress.of(i)));
    }

    private WorkerOutcome.Generated streamOne(String path, Map<String, Object> body, BatchProgress progress) {
        var answer = new StreamedAnswer(1, progress);
        try {
            endpoint.stream(path, body, answer::jsonLine);
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        return answer.only();
    }

    private static List<Map<String, String>> messages(Prompt.Chat chat) {
        return chat.messages().stream()
                .map(message -> Map.of("role", message.role(), "content", message.content()))
                .toList();
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        Map<String, Object> options = options(batch.parameters());
        if (batch.isChat()) {
            return FanOut.complete(batch.chats(), chat -> chat(chat, options));
        }
        return FanOut.complete(batch.prompts(), prompt -> generate(prompt, options));
    }

    @Override
    public List<WorkerOutcome> embed(Batch batch) {
        List<String> inputs = batch.inputs();
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("model", model);
        body.put("input", inputs);
        if (batch.dimensions() != null) {
            body.put("dimensions", batch.dimensions());
        }
        JsonNode answer;
        try {
            answer = endpoint.post(EMBED, body);
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        JsonNode embeddings = answer.get("embeddings");
        if (embeddings == null || !embeddings.isArray() || embeddings.size() != inputs.size()) {
            throw new WorkerException.BadAnswer("the worker answered " + (embeddings == null || !embeddings.isArray()
                    ? "no embeddings" : embeddings.size() + " embeddings") + " for " + inputs.size() + " inputs");
        }
        JsonNode counted = answer.get("prompt_eval_count");
        if (!WorkerEndpoint.isCount(counted)) {
            throw new WorkerException.BadAnswer("the worker's answer has no prompt_eval_count");
        }
        List<float[]> vectors = new java.util.ArrayList<>(inputs.size());
        embeddings.forEach(vector -> vectors.add(EmbeddingCounts.vector(vector)));
        return EmbeddingCounts.embedded(vectors, inputs, counted.asInt());
    }

    /** Ollama's {@code options}: {@code num_predict} = max tokens, and the sampling settings that are set. */
    private static Map<String, Object> options(GenerationParameters parameters) {
        Map<String, Object> options = new LinkedHashMap<>();
        options.put("num_predict", parameters.maxTokens());
        if (parameters.temperature() != null) {
            options.put("temperature", parameters.temperature());
        }
        if (parameters.topP() != null) {
            options.put("top_p", parameters.topP());
        }
        if (!parameters.stop().isEmpty()) {
            options.put("stop", parameters.stop());
        }
        if (parameters.seed() != null) {
            options.put("seed", parameters.seed());
        }
        return options;
    }

    private WorkerOutcome.Generated generate(String prompt, Map<String, Object> options) {
        JsonNode answer;
        try {
            answer = endpoint.post(GENERATE, Map.of(
                    "model", model,
                    "prompt", prompt,
                    "raw", true,
                    "think", false,
                    "stream", false,
                    "options", options));
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        return generated(answer, answer.get("response"));
    }

    /** A chat: {@code /api/chat} with the messages, the model's chat template applied by Ollama, no thinking. */
    private WorkerOutcome.Generated chat(Prompt.Chat chat, Map<String, Object> options) {
        JsonNode answer;
        try {
            answer = endpoint.post(CHAT, Map.of(
                    "model", model,
                    "messages", messages(chat),
                    "think", false,
                    "stream", false,
                    "options", options));
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        return generated(answer, answer.path("message").get("content"));
    }

    private static WorkerOutcome.Generated generated(JsonNode answer, JsonNode text) {
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

    /** {@code POST /api/show} for the model: 200 when it has been pulled, 404 when not ({@code GET /} checks neither). */
    @Override
    public WorkerHealth health() {
        var show = endpoint.check(SHOW, Map.of("model", model));
        if (show.ok()) {
            return WorkerHealth.UP;
        }
        return switch (show.status()) {
            case 0 -> WorkerHealth.down(show.failure());
            case 401, 403 -> WorkerHealth.misconfigured(WorkerEndpoint.refusedKey(endpoint.name(), show.status()));
            case 404 -> WorkerHealth.misconfigured(WorkerEndpoint.notServed(endpoint.name(), model, "404, pull it first: ollama pull " + model));
            default -> WorkerHealth.down(endpoint.name() + " answered HTTP " + show.status() + " to " + SHOW
                    + (show.message().isEmpty() ? "" : ": " + show.message()));
        };
    }

    @Override
    public void close() {
        endpoint.close();
    }
}
