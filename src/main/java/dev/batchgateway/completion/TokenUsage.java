package dev.batchgateway.completion;

/** Tokens one completion consumed, as counted by the worker that produced it. */
public record TokenUsage(int promptTokens, int completionTokens) {

    public TokenUsage {
        if (promptTokens < 0 || completionTokens < 0) {
            throw new IllegalArgumentException(
                    "token counts must not be negative: prompt " + promptTokens + ", completion " + completionTokens);
        }
    }

    public int totalTokens() {
        return Math.addExact(promptTokens, completionTokens);
    }
}
