package dev.batchgateway.completion;

import java.util.List;

/**
 * Where a call reserves what its requests may cost before the scheduler sees them (budgets, rate limits). A request
 * admitted is then either taken by the scheduler, which {@linkplain Settlement settles} it, or {@linkplain #release
 * released}: nothing stays reserved.
 */
public interface Admission {

    /** For gateways without limits: every call is admitted, nothing is reserved. */
    Admission NONE = new Admission() {
        @Override
        public void admit(Payer payer, List<CompletionRequest> requests) {}

        @Override
        public void release(CompletionRequest request) {}
    };

    /**
     * Admits the requests of one call, all or none: each reserves its bound in every limited window of the payer.
     *
     * @throws RuntimeException the refusal (a limit leaves no room, the store that keeps the limits is away), with
     *     nothing reserved
     */
    void admit(Payer payer, List<CompletionRequest> requests);

    /** An admitted request that the scheduler did not take: what it reserved is free again. */
    void release(CompletionRequest request);
}
