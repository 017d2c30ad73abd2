package dev.batchgateway.clients;

import dev.batchgateway.UsageRows;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The simulated worker's embedding rule, as its javadoc states it: an input's vector has its components drawn from a
 * generator seeded with the FNV-1a hash of the input's UTF-8 bytes, scaled to unit length; 16 dimensions unless asked
 * for others; its prompt tokens are its word count.
 */
final class SimulatedVectors {

    /** The simulated embedding model's own dimensions. */
    static final int DIMENSIONS = 16;

    private SimulatedVectors() {}

    static float[] of(String input) {
        long hash = 0xcbf29ce484222325L;
        for (byte b : input.getBytes(StandardCharsets.UTF_8)) {
            hash = (hash ^ (b & 0xff)) * 0x100000001b3L;
        }
        var random = new SplittableRandom(hash);
        float[] vector = new float[DIMENSIONS];
        double squares = 0;
        for (int i = 0; i < DIMENSIONS; i++) {
            vector[i] = (float) (random.nextDouble() * 2 - 1);
            squares += (double) vector[i] * vector[i];
        }
        float norm = (float) Math.sqrt(squares);
        for (int i = 0; i < DIMENSIONS; i++) {
            vector[i] /= norm;
        }
        return vector;
    }

    /** The usage rows of these inputs: each its own, its word count in prompt tokens, served. */
    static List<UsageRows.Row> billed(List<String> inputs) {
        return inputs.stream()
                .map(input -> new UsageRows.Row(SimulatedEmbeddingGatewayTest.MODEL, input.strip().split("\\s+").length, 0, "served"))
                .toList();
    }
}
