package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.ChatTemplate;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.ModelContext;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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
    private static final String RUNNING = "/api/ps";
    private static final String EMBED = "/api/embed";

    /** A Modelfile's {@code PARAMETER num_ctx}, as {@code /api/show} lists it in {@code parameters}. */
    private static final Pattern NUM_CTX = Pattern.compile("(?m)^num_ctx\\s+(\\d{1,18})\\s*$");

    private final WorkerEndpoint endpoint;
    private final String model;
    /** What {@code /api/show} said of the model's context at the last check. */
    private volatile ModelContext context = ModelContext.UNREPORTED;

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

    /**
     * {@code POST /api/show} for the model: 200 when it has been pulled, 404 when not ({@code GET /} checks neither); its
     * answer, with {@code GET /api/ps}'s, says the model's context ({@link #context(JsonNode, JsonNode, OptionalInt)}).
     */
    @Override
    public WorkerHealth health() {
        var show = endpoint.check(SHOW, Map.of("model", model));
        if (show.ok()) {
            var running = endpoint.check(RUNNING, null);
            context = context(show.json(), running.ok() ? running.json() : null, context.tokens());
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
    public ModelContext context() {
        return context;
    }

    /**
     * The model's context as Ollama runs it. A Modelfile's {@code num_ctx} ({@code parameters} of {@code /api/show})
     * is used as it is, within the model's own {@code <architecture>.context_length} in {@code model_info}, as Ollama
     * caps it (llm/server.go). Without one Ollama runs {@code OLLAMA_CONTEXT_LENGTH}, else 4k, 32k or 256k by the
     * GPUs' memory, which only {@code GET /api/ps} tells, and only while the model is loaded: its
     * {@code context_length} then, else what it said before ({@code known}), else nothing (the gateway's default).
     * Ollama never refuses {@code num_predict} beyond it (it stops, or shifts the context). Its chat template is not
     * measured (Ollama renders it in Go, with no call to ask): {@link ChatTemplate#UNMEASURED}, plus the bytes of the
     * Modelfile's {@code SYSTEM} prompt, which the template adds to every conversation that brings no system message.
     *
     * @param show the answer to {@code /api/show}, or null
     * @param running the answer to {@code /api/ps}, or null
     * @param known the context learned at an earlier check
     */
    ModelContext context(JsonNode show, JsonNode running, OptionalInt known) {
        if (show == null) {
            return new ModelContext(OptionalInt.empty(), false, ChatTemplate.UNMEASURED);
        }
        long trained = 0;
        for (var info : show.path("model_info").properties()) {
            if (info.getKey().endsWith(".context_length") && info.getValue().canConvertToLong()) {
                trained = Math.max(trained, info.getValue().longValue());
            }
        }
        long tokens = 0;
        Matcher numCtx = NUM_CTX.matcher(show.path("parameters").asString(""));
        if (numCtx.find()) {
            tokens = Long.parseLong(numCtx.group(1));
            tokens = trained > 0 ? Math.min(tokens, trained) : tokens;
        } else if (running != null) {
            // /api/ps names a model by its shortest name: "llama3.2:latest" for "llama3.2"
            String tagged = model.contains(":") ? model : model + ":latest";
            for (JsonNode loaded : running.path("models")) {
                if (tagged.equals(loaded.path("model").asString("")) || tagged.equals(loaded.path("name").asString(""))) {
                    tokens = loaded.path("context_length").asLong(0);
                }
            }
        }
        OptionalInt context = tokens > 0 ? OptionalInt.of((int) Math.min(Integer.MAX_VALUE, tokens)) : known;
        int system = show.path("system").asString("").getBytes(StandardCharsets.UTF_8).length;
        var template = new ChatTemplate(ChatTemplate.UNMEASURED.perConversation() + system, ChatTemplate.UNMEASURED.perMessage());
        return new ModelContext(context, false, template);
    }

    @Override
    public void close() {
        endpoint.close();
    }
}
