package dev.batchgateway.completion;

import java.time.Duration;
import java.util.Objects;
import java.util.function.IntFunction;

/**
 * How a call's requests wait for their answers: at most {@code timeout} (the gateway's own request timeout applies
 * when it is shorter), dropped from their batches once {@code presence} says the caller has gone, and, when streamed,
 * each request's text given to its own {@link Deltas} as it is generated.
 *
 * @param deltas where the text of the request at each index of the call goes; {@link Deltas#NONE} for an answer
 *     waited for whole
 */
public record Submission(Duration timeout, CallerPresence presence, IntFunction<Deltas> deltas) {

    public Submission {
        Objects.requireNonNull(timeout, "timeout");
        Objects.requireNonNull(presence, "presence");
        Objects.requireNonNull(deltas, "deltas");
    }

    /** Answers waited for whole. */
    public static Submission whole(Duration timeout, CallerPresence presence) {
        return new Submission(timeout, presence, request -> Deltas.NONE);
    }

    /** Answers streamed: the text of the request at index {@code i} goes to {@code deltas.apply(i)}. */
    public static Submission streamed(Duration timeout, CallerPresence presence, IntFunction<Deltas> deltas) {
        return new Submission(timeout, presence, deltas);
    }

    /** Where the text of the call's request at {@code index} goes. */
    Deltas deltasOf(int index) {
        return Objects.requireNonNull(deltas.apply(index), "deltas");
    }
}
