package dev.batchgateway.completion;

/** A request asked for more tokens than its model allows ({@link TokenCeilings}): a 400 naming {@code max_tokens}. */
public final class MaxTokensException extends IllegalArgumentException {

    public MaxTokensException(String message) {
        super(message);
    }
}
