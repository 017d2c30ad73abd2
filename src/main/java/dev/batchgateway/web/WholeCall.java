package dev.batchgateway.web;

import dev.batchgateway.completion.Answers;
import dev.batchgateway.completion.Call;
import dev.batchgateway.completion.CallerPresence;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.CompletionsApi;
import dev.batchgateway.completion.Submission;
import dev.batchgateway.identity.Caller;
import jakarta.servlet.http.HttpServletRequest;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.function.Function;
import org.springframework.web.context.request.async.DeferredResult;

/**
 * A call of several requests answered together (a prompt list, a chat, inputs to embed): admitted all or none, then
 * answered by the container without a thread waiting, its completions in order, or its first failure thrown for the
 * advice (the requests still waiting are then dropped).
 */
final class WholeCall {

    private WholeCall() {}

    /** @param shaped the answer made of the call's completions, in order */
    static <R> DeferredResult<R> answered(CompletionsApi completions, AnswerWait answerWait, Caller who, long user,
            List<CompletionRequest> requests, HttpServletRequest http, Function<List<Completion>, ? extends R> shaped) {
        // a caller that has gone is dropped from every batch its requests wait for
        CallerPresence caller = ConnectionProbe.presence(http);
        Runnable answered = () -> {
            if (caller instanceof ConnectionProbe probe) {
                probe.answered(); // from here on the connection belongs to the container again
            }
        };
        Answers answers;
        try {
            // all or none: a request over a limit is refused whole, before the worker sees any of it
            answers = completions.submit(new Call(Payers.of(who, user), requests,
                    Submission.whole(ChronoUnit.FOREVER.getDuration(), caller)));
        } catch (RuntimeException refused) {
            answered.run(); // the error is answered now: the scheduler must not touch the connection any more
            throw refused;
        }
        return answerWait.answer(answers.all(), shaped, answered);
    }
}
