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

    /** This prompt failed while others of its batch may have succeeded (workers that fan a batch out). */
    record Failed(WorkerException cause) implements WorkerOutcome {
        public Failed {
            Objects.requireNonNull(cause, "cause");
        }
    }
}
