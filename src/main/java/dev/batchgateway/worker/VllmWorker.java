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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.databind.JsonNode;

/**
 * vLLM's OpenAI-compatible server: a batch is one {@code POST /v1/completions} with every prompt in {@code prompt}.
 *
 * <p>vLLM answers one choice per prompt ({@code index} = the prompt's position) but only an aggregated
 * {@code usage}; with {@code "return_token_ids": true} (vLLM 0.10.2 and later) each choice carries its
 * {@code prompt_token_ids} and {@code token_ids}, whose lengths are that prompt's exact counts. A server that does not
 * return them (an older vLLM), or refuses the field by name (a strict OpenAI-compatible server), gets one request per
 * prompt from then on, sent concurrently, each answer with its own {@code usage}.
 *
 * <p>A batch of chats is one {@code POST /v1/chat/completions} per conversation, all at once: vLLM's chat endpoint
 * takes one conversation per call, and applies the model's chat template.
 *
 * <p>When a caller of the batch streams, the call streams too ({@code "stream": true} with
 * {@code stream_options.include_usage} and {@code continuous_usage_stats}): vLLM sends the chunks of all prompts
 * interleaved, each naming its prompt by {@code index} and carrying that prompt's running counts, and each piece of text
 * goes to its caller as it arrives (see {@link StreamedAnswer}). A chat streams its own call.
 *
 * <p>vLLM refuses or fails a list of prompts as a whole: 400 when one prompt is longer than the model's context allows,
 * 500 when the generation of one prompt fails. Such a batch is sent again one prompt per call, once, so that only the
 * callers whose own prompt fails get an error.
 */
final class VllmWorker implements RemoteWorker {

    private static final Logger LOG = LoggerFactory.getLogger(VllmWorker.class);
    private static final String COMPLETIONS = "/v1/completions";
    private static final String CHAT_COMPLETIONS = "/v1/chat/completions";
    private static final String RETURN_TOKEN_IDS = "return_token_ids";

    private final WorkerEndpoint endpoint;
    private final String model;
    private final WorkerRetries retries;
    private final AtomicBoolean onePromptPerCall = new AtomicBoolean();

    VllmWorker(WorkerEndpoint endpoint, String model) {
        this(endpoint, model, WorkerRetries.NONE);
    }

    VllmWorker(WorkerEndpoint endpoint, String model, WorkerRetries retries) {
        this.endpoint = endpoint;
        this.model = model;
        this.retries = retries;
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
        if (onePromptPerCall.get() || batch.size() == 1) {
            return streamOnePerCall(batch, progress);
        }
        var answer = new StreamedAnswer(batch.size(), progress);
        try {
            endpoint.stream(COMPLETIONS, streamed(body("prompt", batch.prompts(), batch.parameters())), answer::sseLine);
        } catch (WorkerEndpoint.ErrorStatus refused) {
            if (refused.isClientError() || refused.status == 500) {
                // the whole list was refused or failed for one prompt's sake (nothing was streamed yet)
                String kind = refused.isClientError() ? "refused" : "failed";
                LOG.warn("batch {} of {} prompts {} by worker {} (HTTP {}: {}); sending its prompts one per call",
                        batch.id(), batch.size(), kind, endpoint.url(), refused.status, refused.message);
                retries.promptsResent(kind, batch.size());
                return streamOnePerCall(batch, progress);
            }
            throw refused.toWorkerException(model);
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

    /** The body of a streamed call: the running counts of each prompt on its chunks. */
    private static Map<String, Object> streamed(Map<String, Object> body) {
        body.put("stream", true);
        body.put("stream_options", Map.of("include_usage", true, "continuous_usage_stats", true));
        return body;
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        if (batch.isChat()) {
            // vLLM's chat endpoint takes one conversation per call
            return FanOut.complete(batch.chats(), chat -> chatOne(chat, batch.parameters()));
        }
        if (onePromptPerCall.get()) {
            return onePerCall(batch);
        }
        JsonNode answer;
        try {
            Map<String, Object> call = body("prompt", batch.prompts(), batch.parameters());
            call.put(RETURN_TOKEN_IDS, true);
            answer = endpoint.post(COMPLETIONS, call);
        } catch (WorkerEndpoint.ErrorStatus refused) {
            if (refused.isClientError() && refused.message.contains(RETURN_TOKEN_IDS)) {
                fallBackToOnePromptPerCall("refuses the field " + RETURN_TOKEN_IDS);
                return onePerCall(batch);
            }
            if (batch.size() > 1 && (refused.isClientError() || refused.status == 500)) {
                // the whole list was refused or failed for one prompt's sake: find whose, one call per prompt
                String kind = refused.isClientError() ? "refused" : "failed";
                LOG.warn("batch {} of {} prompts {} by worker {} (HTTP {}: {}); sending its prompts one per call",
                        batch.id(), batch.size(), kind, endpoint.url(), refused.status, refused.message);
                retries.promptsResent(kind, batch.size());
                return onePerCall(batch);
            }
            throw refused.toWorkerException(model);
        }
        List<JsonNode> choices = choicesByIndex(answer, batch.size());
        if (choices.stream().allMatch(VllmWorker::hasTokenIds)) {
            List<WorkerOutcome> outcomes = new ArrayList<>(choices.size());
            for (JsonNode choice : choices) {
                var usage = new TokenUsage(choice.get("prompt_token_ids").size(), choice.get("token_ids").size());
                outcomes.add(generated(choice, usage));
            }
            return outcomes;
        }
        fallBackToOnePromptPerCall("does not return token ids per prompt (needs vLLM 0.10.2 or later)");
        if (batch.size() == 1) {
            // the aggregated usage of a batch of one is that prompt's own
            return List.of(generated(choices.getFirst(), usage(answer)));
        }
        return onePerCall(batch);
    }

    private void fallBackToOnePromptPerCall(String why) {
        if (onePromptPerCall.compareAndSet(false, true)) {
            LOG.warn("the worker at {} {}; it gets one request per prompt from now on, so that every caller is billed "
                    + "its own tokens", endpoint.url(), why);
        }
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

    private WorkerOutcome.Generated completeOne(String prompt, GenerationParameters parameters) {
        JsonNode answer;
        try {
            answer = endpoint.post(COMPLETIONS, body("prompt", prompt, parameters));
        } catch (WorkerEndpoint.ErrorStatus refused) {
            throw refused.toWorkerException(model);
        }
        JsonNode choice = choicesByIndex(answer, 1).getFirst();
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
        JsonNode choice = choicesByIndex(answer, 1).getFirst();
        JsonNode content = choice.path("message").get("content");
        if (content == null || !content.isString()) {
            throw new WorkerException.BadAnswer("the worker's chat answer has no message content");
        }
        return new WorkerOutcome.Generated(
                content.asString(), usage(answer), WorkerEndpoint.finishReason(choice.get("finish_reason")));
    }

    /** The choices in prompt order, by their {@code index}: exactly one per prompt, or the answer is not ours. */
    private static List<JsonNode> choicesByIndex(JsonNode answer, int prompts) {
        JsonNode choices = answer.get("choices");
        if (choices == null || !choices.isArray()) {
            throw new WorkerException.BadAnswer("the worker's answer has no choices");
        }
        if (choices.size() != prompts) {
            throw new WorkerException.BadAnswer("the worker answered " + choices.size() + " choices for " + prompts + " prompts");
        }
        JsonNode[] byIndex = new JsonNode[prompts];
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
        }
        return List.of(byIndex);
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
     * {@code GET /health} (200 while the engine runs, 503 once it is dead; it checks neither key nor model), then
     * {@code GET /v1/models}, which answers 401 to a wrong key and must list the configured model.
     */
    @Override
    public WorkerHealth health() {
        var engine = endpoint.check("/health", null);
        if (!engine.ok()) {
            return WorkerHealth.down(engine.failure() != null
                    ? engine.failure()
                    : endpoint.name() + " answered HTTP " + engine.status() + " to /health");
        }
        var models = endpoint.check("/v1/models", null);
        if (models.status() == 401 || models.status() == 403) {
            return WorkerHealth.down(WorkerEndpoint.refusedKey(endpoint.name(), models.status()));
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
            return WorkerHealth.down(WorkerEndpoint.notServed(endpoint.name(), model, "404, it serves " + (served.isEmpty()
                    ? "no model" : String.join(", ", served))));
        }
        return WorkerHealth.UP;
    }

    @Override
    public void close() {
        endpoint.close();
    }
}
