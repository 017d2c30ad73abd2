package dev.batchgateway.web;

import dev.batchgateway.completion.Answers;
import dev.batchgateway.completion.Call;
import dev.batchgateway.completion.CallerPresence;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.CompletionsApi;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.Submission;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.web.ResponsesAnswer.Asked;
import dev.batchgateway.web.ResponsesAnswer.ContentPartEvent;
import dev.batchgateway.web.ResponsesAnswer.ErrorEvent;
import dev.batchgateway.web.ResponsesAnswer.OutputItemEvent;
import dev.batchgateway.web.ResponsesAnswer.ResponseEvent;
import dev.batchgateway.web.ResponsesAnswer.TextDeltaEvent;
import dev.batchgateway.web.ResponsesAnswer.TextDoneEvent;
import jakarta.servlet.http.HttpServletRequest;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * OpenAI's Responses API, the stateless subset: {@code POST /v1/responses} is a chat ({@link ResponsesRequestReader}),
 * read, admitted, batched, limited and billed exactly as {@code /v1/chat/completions} does it ({@link OpenAiController},
 * on the same {@link CompletionsApi} port), and answered as OpenAI's Response object ({@link ResponsesAnswer}).
 * Nothing is stored: every request carries its whole conversation.
 *
 * <p>{@code "stream": true} answers OpenAI's stream of Response events as the batch generates the text: {@code
 * response.created}, {@code response.in_progress}, the message's {@code output_item.added} and {@code
 * content_part.added}, one {@code response.output_text.delta} per piece of text, then {@code output_text.done}, {@code
 * content_part.done}, {@code output_item.done} and {@code response.completed} with the usage ({@code
 * response.incomplete} when the text reached {@code max_output_tokens}), each with its {@code sequence_number}. A
 * failure before the first event is an ordinary error answer; after it, an {@code error} event and {@code
 * response.failed}, as OpenAI ends a stream that failed.
 */
@RestController
class ResponsesController {

    private final CompletionsApi completions;
    private final Callers callers;
    private final OpenAiController chats;
    private final JsonMapper json = JsonMapper.builder().build();

    ResponsesController(CompletionsApi completions, Callers callers, OpenAiController chats) {
        this.completions = completions;
        this.callers = callers;
        this.chats = chats;
    }

    /** The response to come: a {@link DeferredResult} of a {@link ResponseEntity}, or of the {@link EventStream} streamed. */
    @PostMapping(path = "/v1/responses")
    Object create(Caller who, @RequestBody JsonNode body, HttpServletRequest http) {
        callers.requireKnown(who); // before the body is judged: who may not call learns nothing about it
        var asked = new ResponsesRequestReader(chat -> chats.chat(chat, who)).read(body);
        long user = chats.billedUser(who, body.get("user"));
        var parameters = asked.chat().parameters();
        callers.mayUseModel(who, parameters.model());
        http.setAttribute(RequestTracking.USER_ID, user);
        var echo = new Asked("resp_" + hex(), "msg_" + hex(), Instant.now().getEpochSecond(), parameters.model(),
                asked.instructions(), asked.maxOutputTokens(), parameters.temperature(), parameters.topP(),
                asked.chat().serviceTier().wireName());
        if (asked.chat().stream()) {
            return stream(asked.chat(), echo, who, user, http);
        }
        return chats.answered(asked.chat(), who, user, http, answers -> {
            Completion answer = answers.getFirst();
            return ResponseEntity.ok()
                    .contentType(MediaType.APPLICATION_JSON)
                    .body(ResponsesAnswer.answered(echo, answer, answer.text()));
        });
    }

    /**
     * A streamed response: the chat joins the batcher as its own request; the events that open the response go out with
     * its first text (so that a refusal or failure before it is still an ordinary error answer), and those that close
     * it when it is answered.
     */
    private DeferredResult<EventStream> stream(OpenAiRequestReader.Completions asked, Asked echo, Caller who, long user,
            HttpServletRequest http) {
        CallerPresence caller = ConnectionProbe.presence(http);
        var call = new AtomicReference<Answers>();
        var events = new Events(echo, new EventStream(cutOff(), () -> {
            if (call.get() instanceof Answers answers) {
                answers.cancel();
            }
        }));
        // the request is admitted whole or refused here, before the worker sees it
        call.set(completions.submit(new Call(Payers.of(who, user),
                List.of(new CompletionRequest(UUID.randomUUID(), user, asked.prompts().getFirst(), asked.parameters(),
                        asked.serviceTier())),
                Submission.streamed(ChronoUnit.FOREVER.getDuration(), caller, prompt -> events::text))));
        call.get().only().whenComplete((done, failure) -> {
            if (failure != null) {
                events.failed(failure);
            } else {
                events.answered(done);
            }
        });
        return chats.streamed(events.stream, caller);
    }

    /**
     * The events of one streamed response, numbered in the order they are queued ({@code sequence_number}), with the
     * text sent so far, which the closing events repeat whole.
     */
    private final class Events {

        private final Asked echo;
        private final EventStream stream;
        // guarded by this
        private int next;
        private boolean begun;
        private final StringBuilder text = new StringBuilder();

        Events(Asked echo, EventStream stream) {
            this.echo = echo;
            this.stream = stream;
        }

        synchronized void text(String delta) {
            begin();
            text.append(delta);
            send(n -> new TextDeltaEvent("response.output_text.delta", n, echo.messageId(), 0, 0, delta, List.of()));
        }

        synchronized void answered(Completion done) {
            begin();
            String whole = text.toString();
            String status = done.finishReason() == FinishReason.LENGTH ? "incomplete" : "completed";
            send(n -> new TextDoneEvent("response.output_text.done", n, echo.messageId(), 0, 0, whole, List.of()));
            send(n -> new ContentPartEvent("response.content_part.done", n, echo.messageId(), 0, 0, ResponsesAnswer.text(whole)));
            send(n -> new OutputItemEvent("response.output_item.done", n, 0, ResponsesAnswer.message(echo, status, whole)));
            var answer = ResponsesAnswer.answered(echo, done, whole);
            stream.end(named(new ResponseEvent("response." + status, next++, answer)));
        }

        /** The call failed: an ordinary error answer before the first event, else an error event and the failed response. */
        synchronized void failed(Throwable failure) {
            String code = Failure.timedOut(failure) ? "timeout" : "server_error";
            String message = failure.getMessage();
            var error = new ErrorEvent("error", next++, code, message, null, error(code, message));
            var failed = new ResponseEvent("response.failed", next++, ResponsesAnswer.failed(echo, code, message));
            stream.fail(Failure.thrown(failure), named(error), named(failed));
        }

        /** The events that open the response, before its first text. */
        private void begin() {
            if (begun) {
                return;
            }
            begun = true;
            var inProgress = ResponsesAnswer.inProgress(echo);
            send(n -> new ResponseEvent("response.created", n, inProgress));
            send(n -> new ResponseEvent("response.in_progress", n, inProgress));
            send(n -> new OutputItemEvent("response.output_item.added", n, 0, ResponsesAnswer.message(echo, "in_progress", null)));
            send(n -> new ContentPartEvent("response.content_part.added", n, echo.messageId(), 0, 0, ResponsesAnswer.text("")));
        }

        private void send(IntFunction<ResponsesAnswer.Event> event) {
            stream.send(named(event.apply(next++)));
        }
    }

    /** The event that ends the stream of a client that read too slowly: its place in the sequence is not known. */
    private String cutOff() {
        String message = "the client read too slowly and fell too far behind its stream";
        Map<String, Object> event = new LinkedHashMap<>();
        event.put("type", "error");
        event.put("code", "server_error");
        event.put("message", message);
        event.put("param", null);
        event.put("error", error("server_error", message));
        return EventStream.named("error", json.writeValueAsString(event));
    }

    /** An event as OpenAI sends it: its type on the {@code event:} line, then its data. */
    private String named(ResponsesAnswer.Event event) {
        return EventStream.named(event.type(), json.writeValueAsString(event));
    }

    /** OpenAI's error object, as its {@code error} events carry it. */
    private static Map<String, Object> error(String code, String message) {
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("type", code);
        error.put("code", code);
        error.put("message", message);
        error.put("param", null);
        return error;
    }

    private static String hex() {
        return UUID.randomUUID().toString().replace("-", "");
    }
}
