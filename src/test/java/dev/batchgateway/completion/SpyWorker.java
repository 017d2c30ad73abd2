package dev.batchgateway.completion;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A worker that answers every prompt with "completed: prompt" (a chat: its last message) and records every batch it was
 * given.
 */
public class SpyWorker implements WorkerApi {

    public final List<Batch> batches = new CopyOnWriteArrayList<>();

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        batches.add(batch);
        if (batch.isChat()) {
            return batch.chats().stream().<WorkerOutcome>map(chat -> answer(chat.messages().getLast().content())).toList();
        }
        return batch.prompts().stream().<WorkerOutcome>map(SpyWorker::answer).toList();
    }

    /** Embeds each input as {input's length, its position in the batch}, billed its length in prompt tokens. */
    @Override
    public List<WorkerOutcome> embed(Batch batch) {
        batches.add(batch);
        List<String> inputs = batch.inputs();
        return java.util.stream.IntStream.range(0, inputs.size())
                .<WorkerOutcome>mapToObj(i -> new WorkerOutcome.Embedded(
                        new float[] {inputs.get(i).length(), i}, new TokenUsage(inputs.get(i).length(), 0)))
                .toList();
    }

    @Override
    public String model() {
        return "spy-model";
    }

    /** What this worker answers to a prompt: text and counts derived from the prompt alone. */
    public static WorkerOutcome.Generated answer(String prompt) {
        return new WorkerOutcome.Generated(
                "completed: " + prompt, new TokenUsage(prompt.length(), prompt.length() % 7 + 1), FinishReason.STOP);
    }

    /** What this worker answers to a text prompt. */
    public static WorkerOutcome.Generated answer(Prompt prompt) {
        return answer(((Prompt.Text) prompt).text());
    }

    public List<Integer> batchSizes() {
        return batches.stream().map(Batch::size).toList();
    }

    public List<String> prompts() {
        return batches.stream().flatMap(batch -> batch.prompts().stream()).toList();
    }
}
