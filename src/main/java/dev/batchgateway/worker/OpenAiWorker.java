package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.databind.JsonNode;

/**
 * An OpenAI-compatible inference server (vLLM, llama.cpp, SGLang, TGI or another), spoken to in its {@link Dialect}.
 *
 * <p>The dialect is the server's own, found by asking it who it is ({@code GET /version}, {@code /props},
 * {@code /get_server_info}, {@code /info}) at every health check, the start-up check included; until the first check
 * has answered, and when no server recognises itself, it is the configured one ({@code GATEWAY_WORKER_TYPE}). A server
 * found to be another kind than configured is spoken to as what it is, with a warning: each dialect bills every prompt
 * its own exact counts, so following what the server says is safe, while a wrong dialect fails or re-sends batches.
 * One answer never changes the dialect: an answer that cannot be billed prompt by prompt has only its own batch sent
 * again, one prompt per call.
 *
 * <p>A batch of chats is one {@code POST /v1/chat/completions} per conversation, all at once: the chat endpoints take
 * one conversation per call, and apply the model's chat template.
 *
 * <p>When a caller of the batch streams, the call streams too ({@code "stream": true} with
 * {@code stream_options.include_usage} and {@code continuous_usage_stats}): the chunks of all prompts arrive interleaved,
 * each naming its prompt by {@code index} and carrying that prompt's running or final counts, and each piece of text
 * goes to its caller as it arrives (see {@link StreamedAnswer}). A dialect that takes one prompt per call streams one
 * call per prompt; a chat streams its own call.
 *
 * <p>A batch of inputs to embed is one {@code POST /v1/embeddings} with every input in {@code input}, in every dialect
 * (vLLM with {@code --runner pooling}, llama.cpp with {@code --embeddings}, SGLang, TEI and OpenAI all take a list),
 * answered with a vector per input ({@code data[].index}) and the call's {@code usage.prompt_tokens}, shared out over
 * the inputs ({@link EmbeddingCounts}); {@code dimensions} is sent when asked for.
 *
 * <p>vLLM, llama.cpp and SGLang refuse or fail a list of prompts as a whole: 400 when one prompt is longer than the
 * model's context allows, 500 when the generation of one prompt fails. Such a batch is sent again one prompt per call,
 * once, so that only the callers whose own prompt fails get an error.
 */
final class OpenAiWorker implements RemoteWorker {

    private static final Logger LOG = LoggerFactory.getLogger(OpenAiWorker.class);
    private static final String COMPLETIONS = "/v1/completions";
    private static final String CHAT_COMPLETIONS = "/v1/chat/completions";
    private static final String GENERATE = "/generate";
    private static final String EMBEDDINGS = "/v1/embeddings";

    private final WorkerEndpoint endpoint;
    private final String model;
    private final WorkerRetries retries;
    private final Dialect configured;
    private volatile Dialect dialect;
    /** Whether an answer without per-prompt counts was logged since the dialect was last found. */
    private final AtomicBoolean uncountedLogged = new AtomicBoolean();

    /** A vLLM server. */
    OpenAiWorker(WorkerEndpoint endpoint, String model) {
        this(endpoint, model, Dialect.VLLM, WorkerRetries.NONE);
    }

    OpenAiWorker(WorkerEndpoint endpoint, String model, Dialect configured) {
        this(endpoint, model, configured, WorkerRetries.NONE);
    }

    OpenAiWorker(WorkerEndpoint endpoint, String model, Dialect configured, WorkerRetries retries) {
        this.endpoint = endpoint;
        this.model = model;
        this.retries = retries;
        this.configured = configured;
        this.dialect = configured;
    }

    /** The dialect the server is spoken to in now. */
    Dialect dialect() {
        return dialect;
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
        if (!progress.streamed()) {
            return RemoteWorker.super.complete(batch, progress);
        }
        if (batch.isChat()) {
            return FanOut.complete(batch.chats(), (i, chat) -> streamOne(CHAT_COMPLETIONS, "messages", messages(chat),
                    batch.parameters(), progress.of(i)));
        }
        if (!dialect.streamsLists() || batch.size() == 1) {
            return streamOnePerCall(batch, progress);
        }
        var answer = new StreamedAnswer(batch.size(), progress);
        try {
            endpoint.stream(COMPLETIONS, streamed(body("prompt", batch.prompts(), batch.parameters())), answer::sseLine);
        } catch (WorkerEndpoint.ErrorStatus refused) {
            // nothing was streamed yet
            return refusedList(batch, refused, () -> streamOnePerCall(batch, progress));
        }
        return answer.outcomes();
    }

    private List<WorkerOutcome> streamOnePerCall(Batch batch, BatchProgress progress) {
        return FanOut.complete(batch.prompts(), (i, prompt) -> streamOne(COMPLETIONS, "prompt", prompt, batch.parameters(),
                progress.of(i)));
    }

    /** One streamed call of one prompt or one conversation. */
    private WorkerOutcome.Generated streamOne(
            String path, String field, Object prompt, GenerationParameters parameters, BatchProgress progress) {
        var answer = new StreamedAnswer(1, progress);
        try {
            endpoint.stream(path, streamed(body(field, prompt, parameters)), answer::sseLine);
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        return answer.only();
    }

    /**
     * The body of a streamed call: the counts of each prompt on its chunks ({@code continuous_usage_stats} is vLLM's and
     * SGLang's; the others ignore it and send each prompt's usage on its last chunk, or the call's in a last chunk).
     */
    private static Map<String, Object> streamed(Map<String, Object> body) {
        body.put("stream", true);
        body.put("stream_options", Map.of("include_usage", true, "continuous_usage_stats", true));
        return body;
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        if (batch.isChat()) {
            // the chat endpoints take one conversation per call
            return FanOut.complete(batch.chats(), chat -> chatOne(chat, batch.parameters()));
        }
        Dialect speaking = dialect;
        return switch (speaking.lists) {
            case ONE_CALL_PER_PROMPT -> onePerCall(batch);
            case ONE_CALL -> oneCall(batch, speaking);
            case NATIVE_GENERATE -> generate(batch);
        };
    }

    @Override
    public List<WorkerOutcome> embed(Batch batch) {
        List<String> inputs = batch.inputs();
        JsonNode answer;
        try {
            answer = endpoint.post(EMBEDDINGS, embeddingsBody(inputs, batch.dimensions()));
        } catch (WorkerEndpoint.ErrorStatus refused) {
            return refusedList(batch, refused, () -> FanOut.complete(inputs, input -> embedOne(input, batch.dimensions())));
        }
        return EmbeddingCounts.embedded(vectors(answer, inputs.size()), inputs, promptTokens(answer));
    }

    /** One input alone, after its list was refused: its count is its own. */
    private WorkerOutcome.Embedded embedOne(String input, Integer dimensions) {
        JsonNode answer;
        try {
            answer = endpoint.post(EMBEDDINGS, embeddingsBody(List.of(input), dimensions));
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        return (WorkerOutcome.Embedded) EmbeddingCounts.embedded(vectors(answer, 1), List.of(input), promptTokens(answer)).getFirst();
    }

    private Map<String, Object> embeddingsBody(List<String> inputs, Integer dimensions) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("model", model);
        body.put("input", inputs);
        body.put("encoding_format", "float");
        if (dimensions != null) {
            body.put("dimensions", dimensions);
        }
        return body;
    }

    /** The vectors of an embeddings answer, by their {@code index}: one per input, each index once. */
    private static List<float[]> vectors(JsonNode answer, int inputs) {
        JsonNode data = answer.get("data");
        if (data == null || !data.isArray() || data.size() != inputs) {
            throw new WorkerException.BadAnswer("the worker answered " + (data == null || !data.isArray() ? "no data" : data.size() + " embeddings")
                    + " for " + inputs + " inputs");
        }
        float[][] byIndex = new float[inputs][];
        for (JsonNode each : data) {
            JsonNode index = each.get("index");
            if (index == null || !index.isIntegralNumber() || index.asInt() < 0 || index.asInt() >= inputs || byIndex[index.asInt()] != null) {
                throw new WorkerException.BadAnswer("an embedding of the worker's answer has no index of its own among " + inputs + " inputs");
            }
            byIndex[index.asInt()] = EmbeddingCounts.vector(each.get("embedding"));
        }
        return List.of(byIndex);
    }

    private static int promptTokens(JsonNode answer) {
        JsonNode prompt = answer.path("usage").get("prompt_tokens");
        if (!WorkerEndpoint.isCount(prompt)) {
            throw new WorkerException.BadAnswer("the worker's embeddings answer has no usage with prompt_tokens");
        }
        return prompt.asInt();
    }

    /** Every prompt in one {@code /v1/completions} call; each prompt billed its own counts, however the server gives them. */
    private List<WorkerOutcome> oneCall(Batch batch, Dialect speaking) {
        JsonNode answer;
        try {
            Map<String, Object> call = body("prompt", batch.prompts(), batch.parameters());
            if (speaking.tokenIds) {
                call.put("return_token_ids", true);
            }
            answer = endpoint.post(COMPLETIONS, call);
        } catch (WorkerEndpoint.ErrorStatus refused) {
            if (speaking.tokenIds && refused.isClientError() && refused.message.contains("return_token_ids")) {
                // a server that refuses unknown fields (configured as vllm, it is not one): this batch without the field
                if (uncountedLogged.compareAndSet(false, true)) {
                    LOG.warn("the worker at {} refuses the field return_token_ids, so it is not vLLM 0.10.2 or later: each "
                            + "batch is sent again one prompt per call; set GATEWAY_WORKER_TYPE=openai", endpoint.url());
                }
                return onePerCall(batch);
            }
            return refusedList(batch, refused, () -> onePerCall(batch));
        }
        List<WorkerOutcome> outcomes = countedPerPrompt(answer, batch.size());
        if (outcomes != null) {
            return outcomes;
        }
        // the work is done but cannot be billed prompt by prompt: this batch only is sent again, one prompt per call
        if (uncountedLogged.compareAndSet(false, true)) {
            LOG.warn("the worker at {} ({}) answered a list of prompts without each prompt's counts; such a batch is "
                    + "sent again one prompt per call, so that every caller is billed its own tokens", endpoint.url(), speaking.server);
        }
        retries.promptsResent("uncounted", batch.size());
        return onePerCall(batch);
    }

    /**
     * Each prompt's outcome from the answer to a list, or null when the answer has no counts per prompt: a JSON array of
     * complete answers, one per prompt, each with its own {@code usage} (llama.cpp); one object whose choices carry
     * {@code prompt_token_ids} and {@code token_ids} (vLLM); or one object answering a single prompt, whose usage is
     * that prompt's.
     */
    private static List<WorkerOutcome> countedPerPrompt(JsonNode answer, int prompts) {
        if (answer.isArray()) {
            if (answer.size() != prompts) {
                throw new WorkerException.BadAnswer("the worker answered " + answer.size() + " answers for " + prompts + " prompts");
            }
            WorkerOutcome[] byIndex = new WorkerOutcome[prompts];
            for (JsonNode each : answer) {
                JsonNode choice = choicesByIndex(each, 1, prompts).getFirst();
                byIndex[choice.get("index").asInt()] = generated(choice, usage(each));
            }
            return List.of(byIndex);
        }
        List<JsonNode> choices = choicesByIndex(answer, prompts, prompts);
        if (choices.stream().allMatch(OpenAiWorker::hasTokenIds)) {
            List<WorkerOutcome> outcomes = new ArrayList<>(choices.size());
            for (JsonNode choice : choices) {
                var usage = new TokenUsage(choice.get("prompt_token_ids").size(), choice.get("token_ids").size());
                outcomes.add(generated(choice, usage));
            }
            return outcomes;
        }
        if (prompts == 1) {
            return List.of(generated(choices.getFirst(), usage(answer)));
        }
        return null;
    }

    /**
     * SGLang's own {@code /generate} with every prompt in {@code text}: a JSON array of answers in prompt order, each
     * with its {@code text} and its {@code meta_info} counts and finish reason.
     */
    private List<WorkerOutcome> generate(Batch batch) {
        GenerationParameters parameters = batch.parameters();
        Map<String, Object> sampling = new LinkedHashMap<>();
        sampling.put("max_new_tokens", parameters.maxTokens());
        if (parameters.temperature() != null) {
            sampling.put("temperature", parameters.temperature());
        }
        if (parameters.topP() != null) {
            sampling.put("top_p", parameters.topP());
        }
        if (!parameters.stop().isEmpty()) {
            sampling.put("stop", parameters.stop());
        }
        if (parameters.seed() != null) {
            sampling.put("sampling_seed", parameters.seed());
        }
        JsonNode answer;
        try {
            answer = endpoint.post(GENERATE, Map.of("text", batch.prompts(), "sampling_params", sampling));
        } catch (WorkerEndpoint.ErrorStatus refused) {
            return refusedList(batch, refused, () -> onePerCall(batch));
        }
        List<JsonNode> answers = new ArrayList<>();
        if (answer.isArray()) {
            answer.forEach(answers::add);
        } else {
            answers.add(answer);
        }
        if (answers.size() != batch.size()) {
            throw new WorkerException.BadAnswer("the worker answered " + answers.size() + " answers for " + batch.size() + " prompts");
        }
        List<WorkerOutcome> outcomes = new ArrayList<>(answers.size());
        for (JsonNode each : answers) {
            JsonNode text = each.get("text");
            JsonNode meta = each.path("meta_info");
            JsonNode promptTokens = meta.get("prompt_tokens");
            JsonNode completionTokens = meta.get("completion_tokens");
            if (text == null || !text.isString()) {
                throw new WorkerException.BadAnswer("an answer of the worker has no text");
            }
            if (!WorkerEndpoint.isCount(promptTokens) || !WorkerEndpoint.isCount(completionTokens)) {
                throw new WorkerException.BadAnswer("an answer of the worker has no meta_info with prompt_tokens and completion_tokens");
            }
            outcomes.add(new WorkerOutcome.Generated(text.asString(),
                    new TokenUsage(promptTokens.asInt(), completionTokens.asInt()),
                    WorkerEndpoint.finishReason(meta.path("finish_reason").get("type"))));
        }
        return outcomes;
    }

    /**
     * A list of prompts the server refused (400/422) or failed (500) as a whole, for one prompt's sake: its prompts are
     * sent again one per call, once, so that only the callers whose own prompt fails get an error. Any other refusal,
     * or one of a single prompt, is the batch's.
     */
    private List<WorkerOutcome> refusedList(
            Batch batch, WorkerEndpoint.ErrorStatus refused, Supplier<List<WorkerOutcome>> onePerCall) {
        if (batch.size() > 1 && (refused.isClientError() || refused.status == 500)) {
            String kind = refused.isClientError() ? "refused" : "failed";
            LOG.warn("batch {} of {} prompts {} by worker {} (HTTP {}: {}); sending its prompts one per call",
                    batch.id(), batch.size(), kind, endpoint.url(), refused.status, refused.message);
            retries.promptsResent(kind, batch.size());
            return onePerCall.get();
        }
        throw refused.toWorkerException(model);
    }

    private List<WorkerOutcome> onePerCall(Batch batch) {
        return FanOut.complete(batch.prompts(), prompt -> completeOne(prompt, batch.parameters()));
    }

    /**
     * A {@code /v1/completions} body (the prompt a string or a list) or a {@code /v1/chat/completions} body (the
     * messages): the model, and the parameters that are set.
     */
    private Map<String, Object> body(String field, Object prompt, GenerationParameters parameters) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("model", model);
        body.put(field, prompt);
        body.put("max_tokens", parameters.maxTokens());
        if (parameters.temperature() != null) {
            body.put("temperature", parameters.temperature());
        }
        if (parameters.topP() != null) {
            body.put("top_p", parameters.topP());
        }
        if (!parameters.stop().isEmpty()) {
            body.put("stop", parameters.stop());
        }
        if (parameters.seed() != null) {
            body.put("seed", parameters.seed());
        }
        return body;
    }

    /** One prompt alone, billed by the answer's own {@code usage}. */
    private WorkerOutcome.Generated completeOne(String prompt, GenerationParameters parameters) {
        JsonNode answer;
        try {
            answer = endpoint.post(COMPLETIONS, body("prompt", prompt, parameters));
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        if (answer.isArray() && answer.size() == 1) {
            answer = answer.get(0); // a list of one answer, as llama.cpp would send for a list of one prompt
        }
        JsonNode choice = choicesByIndex(answer, 1, 1).getFirst();
        return generated(choice, usage(answer));
    }

    private static List<Map<String, String>> messages(Prompt.Chat chat) {
        return chat.messages().stream()
                .map(message -> Map.of("role", message.role(), "content", message.content()))
                .toList();
    }

    private WorkerOutcome.Generated chatOne(Prompt.Chat chat, GenerationParameters parameters) {
        JsonNode answer;
        try {
            answer = endpoint.post(CHAT_COMPLETIONS, body("messages", messages(chat), parameters));
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        JsonNode choice = choicesByIndex(answer, 1, 1).getFirst();
        JsonNode content = choice.path("message").get("content");
        if (content == null || !content.isString()) {
            throw new WorkerException.BadAnswer("the worker's chat answer has no message content");
        }
        return new WorkerOutcome.Generated(
                content.asString(), usage(answer), WorkerEndpoint.finishReason(choice.get("finish_reason")));
    }

    /**
     * The choices of one answer object, by their {@code index}: exactly {@code count} of them, each index naming one of
     * the batch's {@code prompts} at most once, or the answer is not ours. In index order when the answer has them all.
     */
    private static List<JsonNode> choicesByIndex(JsonNode answer, int count, int prompts) {
        JsonNode choices = answer.get("choices");
        if (choices == null || !choices.isArray()) {
            throw new WorkerException.BadAnswer("the worker's answer has no choices");
        }
        if (choices.size() != count) {
            throw new WorkerException.BadAnswer("the worker answered " + choices.size() + " choices for " + count + " prompts");
        }
        JsonNode[] byIndex = new JsonNode[prompts];
        List<JsonNode> found = new ArrayList<>(count);
        for (JsonNode choice : choices) {
            JsonNode index = choice.get("index");
            if (index == null || !index.isIntegralNumber()) {
                throw new WorkerException.BadAnswer("a choice of the worker's answer has no index");
            }
            int position = index.asInt();
            if (position < 0 || position >= prompts) {
                throw new WorkerException.BadAnswer("the worker answered choice index " + position + " for " + prompts + " prompts");
            }
            if (byIndex[position] != null) {
                throw new WorkerException.BadAnswer("the worker answered choice index " + position + " twice");
            }
            byIndex[position] = choice;
            found.add(choice);
        }
        return count == prompts ? List.of(byIndex) : found;
    }

    private static boolean hasTokenIds(JsonNode choice) {
        return isArray(choice.get("prompt_token_ids")) && isArray(choice.get("token_ids"));
    }

    private static boolean isArray(JsonNode node) {
        return node != null && node.isArray();
    }

    private static WorkerOutcome.Generated generated(JsonNode choice, TokenUsage usage) {
        return new WorkerOutcome.Generated(text(choice), usage, WorkerEndpoint.finishReason(choice.get("finish_reason")));
    }

    private static String text(JsonNode choice) {
        JsonNode text = choice.get("text");
        if (text == null || !text.isString()) {
            throw new WorkerException.BadAnswer("choice " + choice.get("index") + " of the worker's answer has no text");
        }
        return text.asString();
    }

    private static TokenUsage usage(JsonNode answer) {
        JsonNode usage = answer.get("usage");
        JsonNode prompt = usage == null ? null : usage.get("prompt_tokens");
        JsonNode completion = usage == null ? null : usage.get("completion_tokens");
        if (!WorkerEndpoint.isCount(prompt) || !WorkerEndpoint.isCount(completion)) {
            throw new WorkerException.BadAnswer("the worker's answer has no usage with prompt_tokens and completion_tokens");
        }
        return new TokenUsage(prompt.asInt(), completion.asInt());
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
     * Finds which server this is (see {@link #identify()}), then: {@code GET /health} (200 while the engine runs; it
     * checks neither key nor model; not asked of an unrecognised server, which may have none), {@code GET /v1/models},
     * which must list the configured model (vLLM and SGLang answer 401 to a wrong key there), and, where listing models
     * needs no key (llama.cpp, TGI), the dialect's minimal authenticated call, which a wrong key gets 401 for.
     */
    @Override
    public WorkerHealth health() {
        int refused = identify();
        Dialect speaking = dialect;
        if (refused != 0) {
            // not recognised because a question was refused for the key: the model list may be open (llama.cpp)
            return WorkerHealth.misconfigured(WorkerEndpoint.refusedKey(endpoint.name(), refused));
        }
        if (speaking != Dialect.OPENAI) {
            var engine = endpoint.check("/health", null);
            if (!engine.ok()) {
                return WorkerHealth.down(engine.failure() != null
                        ? engine.failure()
                        : endpoint.name() + " answered HTTP " + engine.status() + " to /health");
            }
        }
        var models = endpoint.check("/v1/models", null);
        if (models.status() == 401 || models.status() == 403) {
            return WorkerHealth.misconfigured(WorkerEndpoint.refusedKey(endpoint.name(), models.status()));
        }
        if (!models.ok()) {
            return WorkerHealth.down(models.failure() != null
                    ? models.failure()
                    : endpoint.name() + " answered HTTP " + models.status() + " to /v1/models");
        }
        Set<String> served = new LinkedHashSet<>();
        JsonNode json = models.json();
        JsonNode data = json == null ? null : json.get("data");
        if (data != null && data.isArray()) {
            data.forEach(entry -> {
                JsonNode id = entry.get("id");
                if (id != null && id.isString()) {
                    served.add(id.asString());
                }
            });
        }
        if (!served.contains(model)) {
            return WorkerHealth.misconfigured(WorkerEndpoint.notServed(endpoint.name(), model, "404, it serves " + (served.isEmpty()
                    ? "no model" : String.join(", ", served))));
        }
        if (speaking.keyProof != null) {
            var proof = endpoint.check(speaking.keyProof.path(), speaking.keyProof.body());
            if (proof.status() == 401 || proof.status() == 403) {
                return WorkerHealth.misconfigured(WorkerEndpoint.refusedKey(endpoint.name(), proof.status()));
            }
            if (proof.status() == 0) {
                return WorkerHealth.down(proof.failure());
            }
            // any other answer got past the key check: only the key was in question
        }
        return WorkerHealth.UP;
    }

    /**
     * Asks the server who it is: first as what it was last found to be (one call while nothing changes), then each
     * kind in turn; the first answer a dialect recognises sets it. When none does, the configured dialect is used; when
     * the server does not answer at all, nothing changes (the health check reports why).
     *
     * @return 401 or 403 when a question was refused for the key (SGLang and llama.cpp guard these paths), else 0
     */
    private int identify() {
        Dialect current = dialect;
        List<Dialect> candidates = new ArrayList<>();
        if (current.identityPath != null) {
            candidates.add(current);
        }
        for (Dialect each : Dialect.RECOGNISABLE) {
            if (candidates.stream().noneMatch(asked -> asked.identityPath.equals(each.identityPath))) {
                candidates.add(each);
            }
        }
        int refused = 0;
        for (Dialect candidate : candidates) {
            var answer = endpoint.check(candidate.identityPath, null);
            if (answer.status() == 0) {
                return refused;
            }
            if (answer.status() == 401 || answer.status() == 403) {
                refused = answer.status();
            }
            Dialect found = answer.ok() ? candidate.recognise(answer.json()) : null;
            if (found != null) {
                speak(found, "GET " + candidate.identityPath);
                return 0;
            }
        }
        speak(configured, null);
        return refused;
    }

    private void speak(Dialect found, String how) {
        Dialect before = dialect;
        if (found == before) {
            return;
        }
        dialect = found;
        uncountedLogged.set(false);
        if (found == configured) {
            LOG.info("the worker at {} is spoken to as {}, as configured", endpoint.url(), found.server);
        } else if (how == null) {
            LOG.warn("the worker at {} no longer says what it is; it is spoken to as {}, as configured", endpoint.url(), found.server);
        } else {
            LOG.warn("the worker at {} is {} ({} says so), not {} as GATEWAY_WORKER_TYPE says; it is spoken to as {}",
                    endpoint.url(), found.server, how, configured.server, found.server);
        }
    }

    @Override
    public void close() {
        endpoint.close();
    }
}
