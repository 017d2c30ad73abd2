package dev.batchgateway.worker;

import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import tools.jackson.databind.JsonNode;

/**
 * Each input's prompt tokens from a server's count of a whole list: vLLM's and llama.cpp's {@code /v1/embeddings}
 * and Ollama's {@code /api/embed} count only the call ({@code usage.prompt_tokens}, {@code prompt_eval_count}). The
 * call's count is shared out in proportion to each input's UTF-8 bytes plus a special-token allowance (largest
 * remainders first), so the rows of a batch add up to exactly what the server counted; a call of one input, or of
 * inputs alike, bills each exactly.
 */
final class EmbeddingCounts {

    /** Special tokens an input may carry beside its bytes ([CLS] and [SEP], BOS and EOS): the same for every input. */
    static final int ALLOWANCE = 16;

    private EmbeddingCounts() {}

    /** The outcome of each input: its vector and its share of {@code counted}. */
    static List<WorkerOutcome> embedded(List<float[]> vectors, List<String> inputs, int counted) {
        int[] shares = shares(counted, inputs);
        List<WorkerOutcome> outcomes = new ArrayList<>(vectors.size());
        for (int i = 0; i < vectors.size(); i++) {
            outcomes.add(new WorkerOutcome.Embedded(vectors.get(i), new TokenUsage(shares[i], 0)));
        }
        return outcomes;
    }

    /** {@code total} shared out over {@code inputs}, each by its weight; the shares add up to {@code total}. */
    static int[] shares(int total, List<String> inputs) {
        long[] weights = new long[inputs.size()];
        long sum = 0;
        for (int i = 0; i < weights.length; i++) {
            weights[i] = inputs.get(i).getBytes(StandardCharsets.UTF_8).length + ALLOWANCE;
            sum += weights[i];
        }
        int[] shares = new int[weights.length];
        long[] remainders = new long[weights.length];
        long given = 0;
        for (int i = 0; i < weights.length; i++) {
            long exact = total * weights[i];
            shares[i] = (int) (exact / sum);
            remainders[i] = exact % sum;
            given += shares[i];
        }
        // the tokens rounding left over go one each to the largest remainders, the earlier input first among equals
        for (long left = total - given; left > 0; left--) {
            int largest = 0;
            for (int i = 1; i < remainders.length; i++) {
                if (remainders[i] > remainders[largest]) {
                    largest = i;
                }
            }
            shares[largest]++;
            remainders[largest] = -1;
        }
        return shares;
    }

    /** A vector as the server wrote it: an array of numbers. */
    static float[] vector(JsonNode embedding) {
        if (embedding == null || !embedding.isArray() || embedding.isEmpty()) {
            throw new WorkerException.BadAnswer("an embedding of the worker's answer is not an array of numbers");
        }
        float[] vector = new float[embedding.size()];
        for (int i = 0; i < vector.length; i++) {
            JsonNode number = embedding.get(i);
            if (!number.isNumber()) {
                throw new WorkerException.BadAnswer("an embedding of the worker's answer is not an array of numbers");
            }
            vector[i] = number.floatValue();
        }
        return vector;
    }
}
