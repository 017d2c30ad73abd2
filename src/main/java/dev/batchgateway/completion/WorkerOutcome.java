package dev.batchgateway.completion;

import java.util.Objects;

/** What the worker made of one prompt of a batch. */
public sealed interface WorkerOutcome {

    /** The prompt was completed. */
    record Generated(String text, TokenUsage usage, FinishReason finishReason) implements WorkerOutcome {
        public Generated {
            Objects.requireNonNull(text, "text");
            Objects.requireNonNull(usage, "usage");
            Objects.requireNonNull(finishReason, "finishReason");
        }
    }

    /**
     * The input was embedded: its vector, and its prompt tokens (no completion tokens). The array is the worker's and
     * is not copied (a batch's vectors are large): nobody writes to it.
     */
    record Embedded(float[] vector, TokenUsage usage) implements WorkerOutcome {
        public Embedded {
            Objects.requireNonNull(vector, "vector");
            Objects.requireNonNull(usage, "usage");
        }
    }

    /** This prompt failed while others of its batch may have succeeded (workers that fan a batch out). */
    record Failed(WorkerException cause) implements WorkerOutcome {
        public Failed {
            Objects.requireNonNull(cause, "cause");
        }
    }
}
