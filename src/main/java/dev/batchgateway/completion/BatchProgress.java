package dev.batchgateway.completion;

/**
 * What a worker reports while a batch generates, prompt by prompt ({@code prompt} is the position in the batch): the
 * text as it arrives, and the tokens counted so far. Workers that stream their server's answer report as they read it;
 * the others report each prompt's whole text once it is done. Called on the worker's thread; never blocks.
 */
public interface BatchProgress {

    /** Nobody listens: the worker need not stream. */
    BatchProgress IGNORED = new BatchProgress() {
        @Override
        public boolean text(int prompt, String delta) {
            return true;
        }

        @Override
        public void counted(int prompt, TokenUsage soFar) {}

        @Override
        public boolean streamed() {
            return false;
        }
    };

    /**
     * The next piece of a prompt's text.
     *
     * @return false once no caller of the batch waits for anything any more: the worker may stop reading the answer
     */
    boolean text(int prompt, String delta);

    /** The worker's running count of a prompt's tokens, as its server reports it while generating. */
    void counted(int prompt, TokenUsage soFar);

    /** Whether some caller of the batch wants its text as it is generated, so the server's answer should be streamed. */
    default boolean streamed() {
        return true;
    }

    /** The same progress for a sub-list of the prompts: position {@code i} of the sub-list is {@code positions[i]} here. */
    default BatchProgress of(int... positions) {
        BatchProgress whole = this;
        return new BatchProgress() {
            @Override
            public boolean text(int prompt, String delta) {
                return whole.text(positions[prompt], delta);
            }

            @Override
            public void counted(int prompt, TokenUsage soFar) {
                whole.counted(positions[prompt], soFar);
            }

            @Override
            public boolean streamed() {
                return whole.streamed();
            }
        };
    }
}
