package dev.batchgateway.web;

import dev.batchgateway.completion.Call;
import dev.batchgateway.completion.CallerPresence;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.CompletionsApi;
import dev.batchgateway.completion.SchedulerPolicy;
import dev.batchgateway.completion.TokenCeilings;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.ServiceTier;
import dev.batchgateway.completion.Submission;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import jakarta.servlet.http.HttpServletRequest;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import com.fasterxml.jackson.annotation.JsonProperty;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The gateway's HTTP face: {@code POST /complete}, answered whole or streamed, and {@code GET /health}. */
@RestController
class CompletionController {

    private final CompletionsApi completions;
    private final Callers callers;
    private final CompletionRequestReader reader;
    private final AnswerWait answerWait;
    private final ServedModels models;
    private final JsonMapper json = JsonMapper.builder().build();

    CompletionController(CompletionsApi completions, WebSettings settings, SchedulerPolicy policy, ServedModels models,
            Callers callers, TokenCeilings ceilings) {
        this.completions = completions;
        this.callers = callers;
        this.reader = new CompletionRequestReader(settings.maxPromptChars(), ceilings, models.names());
        this.answerWait = AnswerWait.behind(policy.longestRequestTimeout()); // a flex request may wait longer
        this.models = models;
    }

    /** The answer to come: a {@link DeferredResult} of a {@link CompletionResponse}, or of the {@link EventStream} streamed. */
    @PostMapping(path = "/complete",
            produces = {MediaType.APPLICATION_JSON_VALUE, MediaType.TEXT_EVENT_STREAM_VALUE})
    Object complete(
            Caller who,
            @RequestBody JsonNode body,
            @RequestHeader(name = RequestDeadline.HEADER, required = false) String requestTimeout,
            HttpServletRequest http) {
        Duration timeout = requestTimeout == null ? ChronoUnit.FOREVER.getDuration() : RequestDeadline.parse(requestTimeout);
        var request = reader.read(body, RequestTracking.requestId(http), named -> callers.billedUser(who, named),
                callers.automaticTier(who));
        if (models.embeds(request.parameters().model())) {
            throw new InvalidRequestException("model " + request.parameters().model() + " is an embedding model: it answers /v1/embeddings only");
        }
        callers.mayUseModel(who, request.parameters().model());
        boolean streamed = reader.streamed(body); // the whole body is judged before admission: a 400 reserves nothing
        http.setAttribute(RequestTracking.USER_ID, request.userId());
        var caller = ConnectionProbe.of(http);
        CallerPresence presence = caller == null ? CallerPresence.ASSUMED : caller;
        if (streamed) {
            return stream(request, who, timeout, caller, presence);
        }
        // over a limit: 429 here, before the worker sees anything; admitted, it holds a reservation until settled
        CompletableFuture<Completion> completion = completions.submit(
                new Call(Payers.of(who, request.userId()), List.of(request), Submission.whole(timeout, presence))).only();
        // no thread waits for the answer; a caller that leaves is noticed by the probe
        return answerWait.answer(completion, answer -> CompletionResponse.of(answer, request.serviceTier()), () -> {
            if (caller != null) {
                caller.answered(); // from here on the connection belongs to the container again
            }
        });
    }

    /**
     * {@code "stream": true}: the caller's text as its batch generates it, {@code data: {"delta": "…"}} per piece, then
     * {@code data: {"done": true, …counts, request_id, service_tier}}; a failure after the first event ends the stream with
     * {@code data: {"error": {"status", "detail"}}}.
     */
    private DeferredResult<EventStream> stream(CompletionRequest request, Caller who, Duration timeout, ConnectionProbe caller,
            CallerPresence presence) {
        var cancel = new AtomicReference<Runnable>(() -> {});
        var events = new EventStream(json.writeValueAsString(Map.of("error", new StreamError(502,
                "the client read too slowly and fell too far behind its stream"))), () -> cancel.get().run());
        var answers = completions.submit(new Call(Payers.of(who, request.userId()), List.of(request),
                Submission.streamed(timeout, presence, index -> delta -> events.send(json.writeValueAsString(new StreamDelta(delta))))));
        cancel.set(answers::cancel);
        answers.only().whenComplete((done, failure) -> {
            if (failure == null) {
                events.end(json.writeValueAsString(StreamDone.of(done, request.serviceTier())));
                return;
            }
            int status = Failure.timedOut(failure) ? 504 : 502;
            events.fail(Failure.thrown(failure), json.writeValueAsString(Map.of("error", new StreamError(status, failure.getMessage()))));
        });
        // no thread waits for the first event, nor while the client reads: the stream writes itself as events come
        return events.answer(answerWait, () -> {
            if (caller != null) {
                caller.answered(); // from here on the connection belongs to the container again
            }
        });
    }

    /** A piece of the caller's text. */
    record StreamDelta(String delta) {}

    /** The last event of a stream that completed: what a non-streamed answer holds, but the text. */
    record StreamDone(
            boolean done,
            @JsonProperty("finish_reason") String finishReason,
            @JsonProperty("prompt_tokens") int promptTokens,
            @JsonProperty("completion_tokens") int completionTokens,
            int tokens,
            @JsonProperty("request_id") UUID requestId,
            @JsonProperty("service_tier") String serviceTier) {

        static StreamDone of(Completion completion, ServiceTier tier) {
            var answer = CompletionResponse.of(completion, tier);
            return new StreamDone(true, answer.finishReason(), answer.promptTokens(), answer.completionTokens(),
                    answer.tokens(), answer.requestId(), answer.serviceTier());
        }
    }

    /** The last event of a stream that failed after it began: 502 (the worker) or 504 (a deadline). */
    record StreamError(int status, String detail) {}

    @GetMapping(path = "/health", produces = MediaType.TEXT_PLAIN_VALUE)
    String health() {
        return "ok";
    }
}
