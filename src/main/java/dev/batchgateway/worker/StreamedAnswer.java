package dev.batchgateway.worker;

import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.ArrayList;
import java.util.List;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;

/**
 * The answer of a streamed call as it arrives, prompt by prompt: each prompt's text so far (handed to the batch's
 * progress as it comes), its running token count and its finish reason. What the stream ended with becomes one outcome
 * per prompt, as an answer that was not streamed would.
 *
 * <p>Reads vLLM's server-sent events ({@code data: {…}} lines ending with {@code data: [DONE]}): each chunk holds choices
 * of any prompts, named by {@code index}, with a piece of {@code text} (a completion) or {@code delta.content} (a chat),
 * and, with {@code stream_options.continuous_usage_stats}, the {@code usage} of that prompt so far. An error after the
 * stream began arrives as a {@code data: {"error": …}} event.
 */
final class StreamedAnswer {

    private final BatchProgress progress;
    private final StringBuilder[] texts;
    private final TokenUsage[] counts;
    private final FinishReason[] finishReasons;
    private boolean ended;

    StreamedAnswer(int prompts, BatchProgress progress) {
        this.progress = progress;
        this.texts = new StringBuilder[prompts];
        this.counts = new TokenUsage[prompts];
        this.finishReasons = new FinishReason[prompts];
        for (int i = 0; i < prompts; i++) {
            texts[i] = new StringBuilder();
        }
    }

    /**
     * One line of vLLM's event stream.
     *
     * @return whether to go on reading: false once nobody waits for the batch any more
     * @throws WorkerException.BadAnswer when the stream reports an error or holds something that is not ours
     */
    boolean sseLine(String line) {
        if (!line.startsWith("data:")) {
            return true; // blank lines between events, comments
        }
        String data = line.substring("data:".length()).strip();
        if (data.equals("[DONE]")) {
            ended = true;
            return true; // read on to the end of the answer, so that its connection can be used again
        }
        JsonNode chunk = parse(data);
        JsonNode error = chunk.get("error");
        if (error != null) {
            String message = WorkerEndpoint.errorMessage(data.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            throw new WorkerException.BadAnswer("the worker's stream failed" + (message.isEmpty() ? "" : ": " + message));
        }
        JsonNode choices = chunk.get("choices");
        if (choices == null || !choices.isArray()) {
            throw new WorkerException.BadAnswer("a chunk of the worker's stream has no choices");
        }
        JsonNode summed = chunk.get("usage");
        if (choices.isEmpty() && summed != null && !summed.isNull() && texts.length == 1 && counts[0] == null) {
            // the last chunk's usage, summed over the call's prompts: a one-prompt call's own count, for a server
            // that sends no running counts (no continuous_usage_stats)
            counted(0, summed.get("prompt_tokens"), summed.get("completion_tokens"));
        }
        boolean listened = true;
        for (JsonNode choice : choices) {
            int prompt = index(choice);
            JsonNode usage = chunk.get("usage");
            if (usage != null && !usage.isNull()) {
                // continuous usage stats: this prompt's count so far
                counted(prompt, usage.get("prompt_tokens"), usage.get("completion_tokens"));
            }
            JsonNode text = choice.has("delta") ? choice.path("delta").get("content") : choice.get("text");
            if (text != null && text.isString()) {
                listened &= piece(prompt, text.asString());
            }
            JsonNode reason = choice.get("finish_reason");
            if (reason != null && !reason.isNull()) {
                finishReasons[prompt] = WorkerEndpoint.finishReason(reason);
            }
        }
        return listened;
    }

    /**
     * One line of Ollama's streamed answer, a JSON object per line: a piece of {@code response} (or
     * {@code message.content} for a chat), and on the last line ({@code "done": true}) the counts and the reason.
     */
    boolean jsonLine(String line) {
        if (line.isBlank()) {
            return true;
        }
        JsonNode part = parse(line);
        JsonNode error = part.get("error");
        if (error != null) {
            String message = WorkerEndpoint.errorMessage(line.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            throw new WorkerException.BadAnswer("the worker's stream failed" + (message.isEmpty() ? "" : ": " + message));
        }
        JsonNode text = part.has("message") ? part.path("message").get("content") : part.get("response");
        boolean listened = text == null || !text.isString() || piece(0, text.asString());
        if (part.path("done").asBoolean(false)) {
            JsonNode promptTokens = part.get("prompt_eval_count");
            JsonNode completionTokens = part.get("eval_count");
            if (!WorkerEndpoint.isCount(promptTokens) || !WorkerEndpoint.isCount(completionTokens)) {
                throw new WorkerException.BadAnswer("the worker's answer has no prompt_eval_count and eval_count");
            }
            counted(0, promptTokens, completionTokens);
            finishReasons[0] = WorkerEndpoint.finishReason(part.get("done_reason"));
            ended = true;
            return true; // read on to the end of the answer, so that its connection can be used again
        }
        return listened;
    }

    /**
     * One outcome per prompt: its whole text with its last count. A prompt whose count never came cannot be billed
     * exactly and fails. A stream that was left before its end (nobody waited any more) gives what it had.
     */
    List<WorkerOutcome> outcomes() {
        List<WorkerOutcome> outcomes = new ArrayList<>(texts.length);
        for (int i = 0; i < texts.length; i++) {
            if (counts[i] == null) {
                outcomes.add(new WorkerOutcome.Failed(new WorkerException.BadAnswer(ended
                        ? "the worker's stream carried no token counts for this prompt (vLLM: stream_options.continuous_usage_stats)"
                        : "the worker's stream ended before any count for this prompt")));
            } else {
                FinishReason reason = finishReasons[i] != null ? finishReasons[i] : FinishReason.UNKNOWN;
                outcomes.add(new WorkerOutcome.Generated(texts[i].toString(), counts[i], reason));
            }
        }
        return outcomes;
    }

    /** The single outcome of a one-prompt stream, or its failure. */
    WorkerOutcome.Generated only() {
        return switch (outcomes().getFirst()) {
            case WorkerOutcome.Generated generated -> generated;
            case WorkerOutcome.Failed failed -> throw failed.cause();
            case WorkerOutcome.Embedded embedded -> throw new IllegalStateException("a stream embeds nothing");
        };
    }

    private boolean piece(int prompt, String text) {
        if (text.isEmpty()) {
            return true;
        }
        texts[prompt].append(text);
        return progress.text(prompt, text);
    }

    private void counted(int prompt, JsonNode promptTokens, JsonNode completionTokens) {
        if (!WorkerEndpoint.isCount(promptTokens) || !WorkerEndpoint.isCount(completionTokens)) {
            throw new WorkerException.BadAnswer("a chunk of the worker's stream has a usage without prompt_tokens and completion_tokens");
        }
        counts[prompt] = new TokenUsage(promptTokens.asInt(), completionTokens.asInt());
        progress.counted(prompt, counts[prompt]);
    }

    private int index(JsonNode choice) {
        JsonNode index = choice.get("index");
        if (index == null || !index.isIntegralNumber() || index.asInt() < 0 || index.asInt() >= texts.length) {
            throw new WorkerException.BadAnswer("a chunk of the worker's stream names no prompt of the batch (index "
                    + index + " for " + texts.length + " prompts)");
        }
        return index.asInt();
    }

    private static JsonNode parse(String json) {
        JsonNode node;
        try {
            node = WorkerEndpoint.JSON.readTree(json);
        } catch (JacksonException e) {
            throw new WorkerException.BadAnswer("the worker's stream holds something that is not JSON", e);
        }
        if (node == null || !node.isObject()) {
            throw new WorkerException.BadAnswer("the worker's stream holds something that is not a JSON object");
        }
        return node;
    }
}
