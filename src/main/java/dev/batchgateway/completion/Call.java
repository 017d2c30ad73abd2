package dev.batchgateway.completion;

import java.util.List;
import java.util.Objects;

/**
 * One call of a caller: its requests (a prompt each, in order), who pays for them and how they wait. Admitted whole or
 * not at all.
 */
public record Call(Payer payer, List<CompletionRequest> requests, Submission submission) {

    public Call {
        Objects.requireNonNull(payer, "payer");
        Objects.requireNonNull(submission, "submission");
        requests = List.copyOf(requests);
        if (requests.isEmpty()) {
            throw new IllegalArgumentException("a call has at least one request");
        }
        for (CompletionRequest request : requests) {
            if (request.userId() != payer.user()) {
                throw new IllegalArgumentException("a call of user " + payer.user() + " holds a request of user " + request.userId());
            }
        }
    }
}
