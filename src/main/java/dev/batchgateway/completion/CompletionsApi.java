package dev.batchgateway.completion;

/**
 * Completes the requests of a caller's call, from admission to settlement: the one way in for every entry point
 * ({@code /complete}, the OpenAI-compatible API, and any later one).
 */
public interface CompletionsApi {

    /**
     * Admits the call's requests, all or none, and queues each for its batch. Each request is then settled by the
     * scheduler exactly once, whatever becomes of it.
     *
     * @return one answer per request, in the call's order
     * @throws RuntimeException the refusal: of admission (a limit, or its store away) or of the scheduler
     *     ({@link CompletionRejectedException}), with nothing of the call left reserved or queued
     */
    Answers submit(Call call);
}
