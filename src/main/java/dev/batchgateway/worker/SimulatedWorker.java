package dev.batchgateway.worker;

import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerApi;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * A stand-in for an inference server, for trying the gateway and for tests. Deterministic (sampling settings change
 * nothing): a token is a whitespace-separated word; the completion is the prompt's words in reverse order, cut to max
 * tokens; prompt tokens and completion tokens are the word counts of prompt and completion. Each batch takes the
 * configured latency. A streamed batch reports its text a word at a time, with the count so far, as a server would.
 *
 * <p>It embeds too, for a model configured to ({@code TASK=embed}): an input's vector is drawn from a hash of its text
 * ({@link #vector}), the same on every run, of unit length, {@value #DIMENSIONS} dimensions unless asked for others;
 * its prompt tokens are its word count.
 */
final class SimulatedWorker implements WorkerApi {

    static final String MODEL = "simulated";
    /** The simulated embedding model's own dimensions. */
    static final int DIMENSIONS = 16;

    private final String model;
    private final Duration latency;

    SimulatedWorker(Duration latency) {
        this(MODEL, latency);
    }

    /** A simulation that answers under this model name. */
    SimulatedWorker(String model, Duration latency) {
        this.model = model;
        this.latency = latency;
    }

    @Override
    public List<WorkerOutcome> embed(Batch batch) {
        waitLatency();
        int dimensions = batch.dimensions() != null ? batch.dimensions() : DIMENSIONS;
        return batch.inputs().stream()
                .<WorkerOutcome>map(input -> new WorkerOutcome.Embedded(vector(input, dimensions), new TokenUsage(words(input), 0)))
                .toList();
    }

    /**
     * A deterministic unit vector for {@code input}: its components drawn from a generator seeded with the FNV-1a hash
     * of its UTF-8 bytes. Equal inputs get equal vectors, in any process.
     */
    static float[] vector(String input, int dimensions) {
        long hash = 0xcbf29ce484222325L;
        for (byte b : input.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            hash = (hash ^ (b & 0xff)) * 0x100000001b3L;
        }
        var random = new java.util.SplittableRandom(hash);
        float[] vector = new float[dimensions];
        double squares = 0;
        for (int i = 0; i < dimensions; i++) {
            vector[i] = (float) (random.nextDouble() * 2 - 1);
            squares += (double) vector[i] * vector[i];
        }
        float norm = (float) Math.sqrt(squares);
        for (int i = 0; i < dimensions && norm > 0; i++) {
            vector[i] /= norm;
        }
        return vector;
    }

    private static int words(String text) {
        return text.isBlank() ? 0 : text.strip().split("\\s+").length;
    }

    private void waitLatency() {
        if (latency.isPositive()) {
            try {
                Thread.sleep(latency);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new WorkerException.TimedOut("the simulated call was abandoned", e);
            }
        }
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch) {
        waitLatency();
        int maxTokens = batch.parameters().maxTokens();
        if (batch.isChat()) {
            return batch.chats().stream().map(chat -> answer(chat, maxTokens)).toList();
        }
        return batch.prompts().stream().map(prompt -> generate(prompt, maxTokens)).toList();
    }

    @Override
    public List<WorkerOutcome> complete(Batch batch, BatchProgress progress) {
        List<WorkerOutcome> outcomes = complete(batch);
        if (!progress.streamed()) {
            return outcomes;
        }
        for (int i = 0; i < outcomes.size(); i++) {
            var generated = (WorkerOutcome.Generated) outcomes.get(i);
            String[] words = generated.text().split(" ");
            for (int w = 0; w < words.length && !generated.text().isEmpty(); w++) {
                progress.counted(i, new TokenUsage(generated.usage().promptTokens(), w + 1));
                progress.text(i, w == 0 ? words[w] : " " + words[w]);
            }
            progress.counted(i, generated.usage());
        }
        return outcomes;
    }

    @Override
    public String model() {
        return model;
    }

    /** A chat's answer is its last message's words in reverse order; every message's words count as prompt tokens. */
    static WorkerOutcome answer(Prompt.Chat chat, int maxTokens) {
        int promptTokens = 0;
        for (Prompt.Message message : chat.messages()) {
            promptTokens += message.content().isBlank() ? 0 : message.content().strip().split("\\s+").length;
        }
        var last = (WorkerOutcome.Generated) generate(chat.messages().getLast().content(), maxTokens);
        return new WorkerOutcome.Generated(
                last.text(), new TokenUsage(promptTokens, last.usage().completionTokens()), last.finishReason());
    }

    static WorkerOutcome generate(String prompt, int maxTokens) {
        List<String> words = new ArrayList<>(Arrays.asList(prompt.strip().split("\\s+")));
        Collections.reverse(words);
        boolean cut = words.size() > maxTokens;
        List<String> completion = cut ? words.subList(0, maxTokens) : words;
        return new WorkerOutcome.Generated(
                String.join(" ", completion),
                new TokenUsage(words.size(), completion.size()),
                cut ? FinishReason.LENGTH : FinishReason.STOP);
    }
}
