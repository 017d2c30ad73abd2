package dev.batchgateway.web;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.Answers;
import dev.batchgateway.completion.Call;
import dev.batchgateway.completion.CallerPresence;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.CompletionRequest;
import dev.batchgateway.completion.CompletionsApi;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.SchedulerPolicy;
import dev.batchgateway.completion.TokenCeilings;
import dev.batchgateway.completion.ServedModels;
import dev.batchgateway.completion.Submission;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.UserIds;
import jakarta.servlet.http.HttpServletRequest;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import java.util.function.IntConsumer;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.context.request.async.DeferredResult;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The OpenAI-compatible API, a second web adapter on the same {@link CompletionsApi} port as {@code /complete}: every
 * prompt of a request joins the batcher as its own request, batched, limited and billed exactly like {@code /complete},
 * and the answer is OpenAI's: {@code GET /v1/models}, {@code GET /v1/models/{model}}, {@code POST /v1/completions} and
 * {@code POST /v1/chat/completions}.
 * A chat goes to the worker's chat endpoint, which applies the model's chat template.
 *
 * <p>A request with several prompts is answered when all of them are. When one fails, the request fails with its
 * error: the prompts still waiting are dropped, and those already served are billed (the worker spent their tokens).
 *
 * <p>{@code "stream": true} answers OpenAI's {@code text/event-stream} chunk format, each prompt's text as its batch
 * generates it (the same machinery as {@code /complete}'s streams, see {@link EventStream}), then a usage chunk when
 * {@code stream_options.include_usage} asks for it, then {@code data: [DONE]}.
 */
@RestController
class OpenAiController {

    private final CompletionsApi completions;
    private final Callers callers;
    private final OpenAiRequestReader reader;
    private final List<String> models;
    private final long created = Instant.now().getEpochSecond();
    private final JsonMapper json = JsonMapper.builder().build();
    private final AnswerWait answerWait;
    private final ServedModels served;

    OpenAiController(CompletionsApi completions, WebSettings settings, SchedulerPolicy policy, ServedModels served,
            Callers callers, TokenCeilings ceilings) {
        this.completions = completions;
        this.callers = callers;
        this.models = served.names();
        this.served = served;
        this.answerWait = AnswerWait.behind(policy.longestRequestTimeout()); // a flex request may wait longer
        this.reader = new OpenAiRequestReader(
                new CompletionRequestReader(settings.maxPromptChars(), ceilings, models), ceilings, models);
    }

    record Model(String id, String object, long created, @JsonProperty("owned_by") String ownedBy) {}

    record ModelList(String object, List<Model> data) {}

    @GetMapping(path = "/v1/models", produces = MediaType.APPLICATION_JSON_VALUE)
    ModelList models(Caller who) {
        callers.requireKnown(who);
        // a key issued for some models sees only those
        return new ModelList("list", callers.usableModels(who, models).stream()
                .map(model -> new Model(model, "model", created, "batch-gateway")).toList());
    }

    /**
     * One model, as in the list, or 404 {@code model_not_found}: also for a model the caller's key is not issued for,
     * as the list leaves it out. The id is the rest of the path, slashes and all ({@code Qwen/Qwen2.5-1.5B-Instruct}).
     */
    @GetMapping(path = "/v1/models/{*model}", produces = MediaType.APPLICATION_JSON_VALUE)
    Model model(Caller who, @PathVariable String model) {
        callers.requireKnown(who);
        String id = model.startsWith("/") ? model.substring(1) : model; // the catch-all keeps the slash that begins it
        if (!callers.usableModels(who, models).contains(id)) {
            throw OpenAiError.modelNotFound(id);
        }
        return new Model(id, "model", created, "batch-gateway");
    }

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Choice(String text, int index, Object logprobs, @JsonProperty("finish_reason") String finishReason) {}

    record Usage(
            @JsonProperty("prompt_tokens") long promptTokens,
            @JsonProperty("completion_tokens") long completionTokens,
            @JsonProperty("total_tokens") long totalTokens) {}

    /** A completion or chunk of one: with the service tier it ran in, as OpenAI's answers carry it. */
    @JsonInclude(JsonInclude.Include.NON_ABSENT)
    record CompletionsAnswer(String id, String object, long created, String model, List<Choice> choices, Usage usage,
            @JsonProperty("service_tier") String serviceTier) {}

    /** OpenAI's answer message: {@code refusal} is required and null (a model served here does not refuse by API). */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Message(String role, String content, String refusal) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    record Delta(String role, String content) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record ChatChoice(int index, Message message, Object logprobs, @JsonProperty("finish_reason") String finishReason) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record ChunkChoice(int index, Delta delta, Object logprobs, @JsonProperty("finish_reason") String finishReason) {}

    /** A chat completion or chunk of one: with the service tier it ran in, as OpenAI's answers carry it. */
    @JsonInclude(JsonInclude.Include.NON_ABSENT)
    record ChatAnswer(String id, String object, long created, String model, List<?> choices, Usage usage,
            @JsonProperty("service_tier") String serviceTier) {}

    /** The answer to come: a {@link DeferredResult} of a {@link ResponseEntity}, or of the {@link EventStream} streamed. */
    @PostMapping(path = "/v1/completions")
    Object completions(Caller who, @RequestBody JsonNode body, HttpServletRequest http) {
        callers.requireKnown(who); // before the body is judged: who may not call learns nothing about it
        var asked = reader.completions(body, callers.automaticTier(who));
        refuseEmbeddingModel(asked.parameters().model());
        long user = billedUser(who, body.get("user"));
        callers.mayUseModel(who, asked.parameters().model());
        http.setAttribute(RequestTracking.USER_ID, user);
        String model = asked.parameters().model();
        String tier = asked.serviceTier().wireName();
        String id = "cmpl-" + UUID.randomUUID().toString().replace("-", "");
        if (asked.stream()) {
            long now = created();
            return stream(asked, who, user, http, new Chunks() {
                @Override
                public Object text(int prompt, String text) {
                    return new CompletionsAnswer(id, "text_completion", now, model, List.of(new Choice(text, prompt, null, null)),
                            null, tier);
                }

                @Override
                public Object finished(int prompt, Completion done) {
                    return new CompletionsAnswer(id, "text_completion", now, model,
                            List.of(new Choice("", prompt, null, finishReason(done.finishReason()))), null, tier);
                }

                @Override
                public Object usage(Usage usage) {
                    return new CompletionsAnswer(id, "text_completion", now, model, List.of(), usage, tier);
                }
            });
        }
        return answered(asked, who, user, http, answers -> {
            List<Choice> choices = new ArrayList<>(answers.size());
            for (int i = 0; i < answers.size(); i++) {
                choices.add(new Choice(answers.get(i).text(), i, null, finishReason(answers.get(i).finishReason())));
            }
            return ResponseEntity.ok()
                    .contentType(MediaType.APPLICATION_JSON)
                    .body(new CompletionsAnswer(id, "text_completion", created(), model, choices, usage(answers), tier));
        });
    }

    /** The answer to come: a {@link DeferredResult} of a {@link ResponseEntity}, or of the {@link EventStream} streamed. */
    @PostMapping(path = "/v1/chat/completions")
    Object chatCompletions(Caller who, @RequestBody JsonNode body, HttpServletRequest http) {
        callers.requireKnown(who); // before the body is judged: who may not call learns nothing about it
        var asked = reader.chat(body, callers.automaticTier(who));
        refuseEmbeddingModel(asked.parameters().model());
        long user = billedUser(who, body.get("user"));
        callers.mayUseModel(who, asked.parameters().model());
        http.setAttribute(RequestTracking.USER_ID, user);
        String model = asked.parameters().model();
        String tier = asked.serviceTier().wireName();
        String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
        if (asked.stream()) {
            long now = created();
            String object = "chat.completion.chunk";
            return stream(asked, who, user, http, new Chunks() {
                @Override
                public Object first(int prompt) {
                    return new ChatAnswer(id, object, now, model,
                            List.of(new ChunkChoice(prompt, new Delta("assistant", ""), null, null)), null, tier);
                }

                @Override
                public Object text(int prompt, String text) {
                    return new ChatAnswer(id, object, now, model,
                            List.of(new ChunkChoice(prompt, new Delta(null, text), null, null)), null, tier);
                }

                @Override
                public Object finished(int prompt, Completion done) {
                    return new ChatAnswer(id, object, now, model,
                            List.of(new ChunkChoice(prompt, new Delta(null, null), null, finishReason(done.finishReason()))), null, tier);
                }

                @Override
                public Object usage(Usage usage) {
                    return new ChatAnswer(id, object, now, model, List.of(), usage, tier);
                }
            });
        }
        return answered(asked, who, user, http, answers -> {
            Completion answer = answers.getFirst();
            var choice = new ChatChoice(0, new Message("assistant", answer.text(), null), null, finishReason(answer.finishReason()));
            return ResponseEntity.ok()
                    .contentType(MediaType.APPLICATION_JSON)
                    .body(new ChatAnswer(id, "chat.completion", created(), model, List.of(choice), usage(answers), tier));
        });
    }

    /** A chat body read as {@code /v1/chat/completions} reads it for this caller: {@code /v1/responses} asks chats too. */
    OpenAiRequestReader.Completions chat(JsonNode body, Caller who) {
        return reader.chat(body, callers.automaticTier(who));
    }

    /** The chunks of one streamed answer, in OpenAI's format for completions or for chats. */
    private interface Chunks {
        /** The chunk before a prompt's first text (a chat's role), if any. */
        default Object first(int prompt) {
            return null;
        }

        Object text(int prompt, String text);

        /** A prompt's last chunk, with its finish reason. */
        Object finished(int prompt, Completion done);

        /** The usage chunk that {@code stream_options.include_usage} asks for. */
        Object usage(Usage usage);
    }

    /**
     * A streamed answer: every prompt joins the batcher as its own request and its text goes out in chunks as it is
     * generated, the prompts' chunks interleaved by {@code index}; each prompt ends with a chunk carrying its finish
     * reason; then the usage chunk if asked for, then {@code data: [DONE]}. A failure before the first chunk is an
     * ordinary error answer; after it, an {@code error} event and {@code [DONE]}, the other prompts dropped.
     */
    private DeferredResult<EventStream> stream(OpenAiRequestReader.Completions asked, Caller who, long user, HttpServletRequest http,
            Chunks chunks) {
        CallerPresence caller = ConnectionProbe.presence(http);
        int prompts = asked.prompts().size();
        var call = new AtomicReference<Answers>();
        var events = new EventStream(error("the client read too slowly and fell too far behind its stream", "server_error"), () -> {
            if (call.get() instanceof Answers answers) {
                answers.cancel();
            }
        });
        var begun = new AtomicIntegerArray(prompts);
        var finished = new AtomicInteger();
        IntConsumer begin = prompt -> {
            Object first = chunks.first(prompt);
            if (first != null && begun.compareAndSet(prompt, 0, 1)) {
                events.send(json.writeValueAsString(first));
            }
        };
        // all prompts or none: a request over a limit is refused whole, before the worker sees any of it
        call.set(completions.submit(new Call(Payers.of(who, user), requests(asked, user),
                Submission.streamed(ChronoUnit.FOREVER.getDuration(), caller, prompt -> delta -> {
                    begin.accept(prompt);
                    events.send(json.writeValueAsString(chunks.text(prompt, delta)));
                }))));
        List<CompletableFuture<Completion>> answers = call.get().each();
        for (int i = 0; i < prompts; i++) {
            int prompt = i;
            answers.get(i).whenComplete((done, failure) -> {
                if (failure != null) {
                    // the call fails whole, every prompt with the same failure: the first to end the stream says it
                    events.fail(Failure.thrown(failure), error(failure.getMessage(), Failure.timedOut(failure) ? "timeout" : "server_error"), "[DONE]");
                    return;
                }
                begin.accept(prompt);
                events.send(json.writeValueAsString(chunks.finished(prompt, done)));
                if (finished.incrementAndGet() == prompts) {
                    List<Completion> all = answers.stream().map(CompletableFuture::join).toList();
                    if (asked.includeUsage()) {
                        events.end(json.writeValueAsString(chunks.usage(usage(all))), "[DONE]");
                    } else {
                        events.end("[DONE]");
                    }
                }
            });
        }
        return streamed(events, caller);
    }

    /**
     * A streamed answer to come: no thread waits for its first event, nor while its client reads; the stream writes
     * itself as events come ({@link EventStream}).
     */
    DeferredResult<EventStream> streamed(EventStream events, CallerPresence caller) {
        return events.answer(answerWait, () -> {
            if (caller instanceof ConnectionProbe probe) {
                probe.answered(); // from here on the connection belongs to the container again
            }
        });
    }

    /** An {@code error} event of a stream that failed after it began, in OpenAI's error shape. */
    private String error(String message, String type) {
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("message", message);
        error.put("type", type);
        error.put("param", null);
        error.put("code", null);
        return json.writeValueAsString(Map.of("error", error));
    }

    /**
     * Submits every prompt as its own request; the answer, made of their completions in order, comes when all are
     * completed, or the call's first failure for {@link OpenAiAdvice} (the prompts still waiting are then dropped).
     */
    <R> DeferredResult<R> answered(OpenAiRequestReader.Completions asked, Caller who, long user, HttpServletRequest http,
            Function<List<Completion>, ? extends R> shaped) {
        return WholeCall.answered(completions, answerWait, who, user, requests(asked, user), http, shaped);
    }

    /** An embedding model generates nothing: 400 naming {@code model}, pointing to {@code /v1/embeddings}. */
    private void refuseEmbeddingModel(String model) {
        if (served.embeds(model)) {
            throw OpenAiError.invalid("model", "The model `" + model + "` is an embedding model: it answers /v1/embeddings only");
        }
    }

    /** Every prompt of the request as its own request, billed to {@code user}. */
    private static List<CompletionRequest> requests(OpenAiRequestReader.Completions asked, long user) {
        return asked.prompts().stream()
                .map(prompt -> new CompletionRequest(UUID.randomUUID(), user, prompt, asked.parameters(), asked.serviceTier()))
                .toList();
    }

    private static Usage usage(List<Completion> answers) {
        return new Usage(
                answers.stream().mapToLong(a -> a.usage().promptTokens()).sum(),
                answers.stream().mapToLong(a -> a.usage().completionTokens()).sum(),
                answers.stream().mapToLong(a -> a.usage().totalTokens()).sum());
    }

    private static long created() {
        return Instant.now().getEpochSecond();
    }

    /** OpenAI's words: stop and length; an aborted generation is OpenAI's stop too, with its partial text. */
    static String finishReason(FinishReason reason) {
        return reason == FinishReason.LENGTH ? "length" : "stop";
    }

    /**
     * The user to bill: an API key's own user (OpenAI's {@code user} field is then the caller's end-user tag, not
     * billing), or, with keys off, the user named in {@code user}.
     */
    long billedUser(Caller who, JsonNode user) {
        return who instanceof Caller.Trusted ? billedUser(user) : callers.billedUser(who, OptionalLong.empty()).orElseThrow();
    }

    /**
     * The user to bill. Without API keys ({@code GATEWAY_AUTH=none}, behind a trusted proxy) OpenAI's {@code user}
     * field names the user as a decimal string, as {@code user_id} does on {@code /complete}: there is no key to bill
     * otherwise, so a missing or free-form {@code user} is refused rather than billed to nobody.
     */
    private static long billedUser(JsonNode user) {
        OptionalLong id = user != null && user.isString() ? UserIds.parse(user.stringValue()) : OptionalLong.empty();
        return id.orElseThrow(() -> OpenAiError.invalid("user",
                "user must name the user to bill: a decimal string from 1 to " + Long.MAX_VALUE + ", e.g. \"42\""));
    }
}
