package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
 * return them (an older vLLM, another OpenAI-compatible server) gets one request per prompt from then on, sent
 * concurrently, each answer with its own {@code usage}.
 */
final class VllmWorker implements RemoteWorker {

    private static final Logger LOG = LoggerFactory.getLogger(VllmWorker.class);
    private static final String COMPLETIONS = "/v1/completions";

    private final WorkerEndpoint endpoint;
    private final String model;
    private final AtomicBoolean onePromptPerCall = new AtomicBoolean();

    VllmWorker(WorkerEndpoint endpoint, String model) {
        this.endpoint = endpoint;
        this.model = model;
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        int maxTokens = batch.parameters().maxTokens();
        if (onePromptPerCall.get()) {
            return FanOut.complete(batch.prompts(), prompt -> completeOne(prompt, maxTokens));
        }
        JsonNode answer = endpoint.post(COMPLETIONS, Map.of(
                "model", model,
                "prompt", batch.prompts(),
                "max_tokens", maxTokens,
                "return_token_ids", true));
        List<JsonNode> choices = choicesByIndex(answer, batch.size());
        if (choices.stream().allMatch(VllmWorker::hasTokenIds)) {
            List<WorkerOutcome> outcomes = new ArrayList<>(choices.size());
            for (JsonNode choice : choices) {
                var usage = new TokenUsage(choice.get("prompt_token_ids").size(), choice.get("token_ids").size());
                outcomes.add(generated(choice, usage));
            }
            return outcomes;
        }
        if (onePromptPerCall.compareAndSet(false, true)) {
            LOG.warn("the worker at {} does not return token ids per prompt (needs vLLM 0.10.2 or later); "
                    + "it gets one request per prompt from now on, so that every caller is billed its own tokens",
                    endpoint.url());
        }
        if (batch.size() == 1) {
            // the aggregated usage of a batch of one is that prompt's own
            return List.of(generated(choices.getFirst(), usage(answer)));
        }
        return FanOut.complete(batch.prompts(), prompt -> completeOne(prompt, maxTokens));
    }

    private WorkerOutcome.Generated completeOne(String prompt, int maxTokens) {
        JsonNode answer = endpoint.post(COMPLETIONS, Map.of("model", model, "prompt", prompt, "max_tokens", maxTokens));
        JsonNode choice = choicesByIndex(answer, 1).getFirst();
        return generated(choice, usage(answer));
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

    /** {@code GET /health}: 200 while the engine runs, 503 once it is dead. */
    @Override
    public boolean healthy() {
        return endpoint.answers("/health", "");
    }

    @Override
    public void close() {
        endpoint.close();
    }
}
