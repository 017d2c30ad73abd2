package dev.batchgateway.completion;

import java.util.function.Predicate;

/**
 * The order in which a lane's waiting requests take the seats of its batches. A lane asks for one request at a time;
 * which of them may sit in the batch being formed (its batch key) is the lane's to say. A later policy (weights per
 * user or per key) is a new class. Used by the scheduler's dispatching thread only.
 */
interface LanePolicy {

    /** A request joins the lane. */
    void add(Queued request);

    /** The request whose turn it is among those {@code eligible} accepts, taken out of the policy; null when none. */
    Queued next(Predicate<Queued> eligible);

    /** A waiting request ended before it was sent (its caller left, its deadline passed). Any thread. */
    default void ended(Queued request) {}

    /** Forgets the requests {@code ended} accepts (they ended while waiting). */
    void removeIf(Predicate<Queued> ended);
}
