package dev.batchgateway.worker;

import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.TokenUsage;
import java.util.Map;
import java.util.TreeMap;

/** A batch's progress as the worker tests see it: each prompt's text as it arrived, by position. */
final class StreamedTexts implements BatchProgress {

    final Map<Integer, String> texts = new TreeMap<>();
    private final boolean streamed;

    /** For a batch some caller of which streams. */
    StreamedTexts() {
        this(true);
    }

    /** @param streamed whether some caller of the batch streams (else the server is asked for whole answers) */
    StreamedTexts(boolean streamed) {
        this.streamed = streamed;
    }

    @Override
    public synchronized boolean text(int prompt, String delta) {
        texts.merge(prompt, delta, String::concat);
        return true;
    }

    @Override
    public void counted(int prompt, TokenUsage soFar) {}

    @Override
    public boolean streamed() {
        return streamed;
    }
}
