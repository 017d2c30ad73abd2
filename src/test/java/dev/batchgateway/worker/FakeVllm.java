package dev.batchgateway.worker;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static com.github.tomakehurst.wiremock.client.WireMock.urlPathMatching;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.github.tomakehurst.wiremock.extension.ResponseDefinitionTransformerV2;
import com.github.tomakehurst.wiremock.http.ResponseDefinition;
import com.github.tomakehurst.wiremock.stubbing.ServeEvent;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A vLLM OpenAI-compatible server on WireMock that really completes, and fails the way vLLM does (SERVERS.md):
 * <ul>
 *   <li>{@code /v1/chat/completions} answers one conversation: its last message upper-cased, counted as below, with 2
 *       prompt tokens more per message for the chat template.
 *   <li>{@code /v1/completions} takes {@code prompt} as a string or a list. For each prompt it answers the prompt
 *       upper-cased, with one prompt token per word and one completion token per character of the prompt's first word,
 *       cut to {@code max_tokens} — so every prompt has its own counts. Choices come back in reverse order, as a server
 *       may send them; {@code prompt_token_ids} and {@code token_ids} are filled only when {@code return_token_ids} is
 *       true, {@code null} otherwise.
 *   <li>One prompt whose tokens plus {@code max_tokens} exceed {@link #maxModelLen} fails the whole list with 400, in
 *       vLLM's error shape; a prompt containing {@link #GENERATION_ERROR} fails the whole list with 500, as a
 *       generation ending in {@code finish_reason: "error"} does; a {@code model} other than the one served is 404.
 *   <li>With an {@link #apiKey}, every {@code /v1} path wants {@code Authorization: Bearer <key>} and answers 401
 *       {@code {"error":"Unauthorized"}} otherwise; {@code /health} is not guarded, as in vLLM.
 *   <li>{@link #strict} makes it refuse {@code return_token_ids} by name with 400, as OpenAI-compatible servers that
 *       reject unknown fields do.
 *   <li>{@code "stream": true} answers server-sent events as vLLM does: each prompt's text in pieces of
 *       {@link #PIECE} characters, the pieces of all prompts interleaved (a round of one piece per prompt, the last
 *       prompt first), each chunk naming its prompt by {@code index}; with {@code stream_options.include_usage} and
 *       {@code continuous_usage_stats}, each chunk carries that prompt's counts so far, and a last chunk with no choices
 *       the counts summed; then {@code data: [DONE]}. A prompt containing {@link #GENERATION_ERROR} makes the stream
 *       fail after its first round, as vLLM reports an error once a stream has begun: HTTP 200 and a
 *       {@code data: {"error": …}} event. {@link #streamMillis} spreads the answer over that time, in chunks.
 *       {@code stream_options} without {@code stream} is 400.
 * </ul>
 * <ul>
 *   <li>{@code /v1/embeddings} (vLLM {@code --runner pooling}, llama.cpp {@code --embeddings}) takes {@code input} as a
 *       string or a list and answers OpenAI's list: a vector per input by {@code index} ({@link
 *       SimulatedWorker#vector}, {@link #EMBEDDING_DIMENSIONS} dimensions or {@code dimensions}), and {@code usage} with
 *       the prompt tokens of the whole call only (one per word and {@link #SPECIAL_TOKENS} per input), as both servers
 *       count; an input of more than {@link #maxModelLen} tokens fails the whole list with 400.
 * </ul>
 * {@link #kind} makes it another server, as each really behaves (docs/workers.md, and the recorded llama-server
 * exchanges in shared/realworker): each answers its own identity call ({@code GET /version}, {@code /props},
 * {@code /get_server_info}, {@code /info}) and lists its model with its own {@code owned_by}; then
 * <ul>
 *   <li>{@link Kind#LLAMA_CPP}: a list of prompts is answered with a JSON array of complete answers, one per prompt,
 *       each with its own {@code usage} (one object for one prompt), never token ids; {@code model} is ignored; one
 *       prompt over the context fails the list with 400 {@code exceed_context_size_error}; under an {@link #apiKey},
 *       {@code /health} and {@code /v1/models} stay open and {@code POST /tokenize} needs the key.
 *   <li>{@link Kind#SGLANG}: {@code POST /generate} with {@code text} a list answers a JSON array in prompt order, each
 *       with {@code meta_info.prompt_tokens} and {@code completion_tokens}; a too long prompt fails the whole list with
 *       400; under an {@link #apiKey} every path but {@code /health} needs the key.
 *   <li>{@link Kind#TGI}: a list of more than {@link #maxClientBatchSize} prompts is 422; a list is one object with
 *       the usage summed; {@code model} is ignored; a too long prompt is 422; under an {@link #apiKey},
 *       {@code /info}, {@code /health} and {@code /v1/models} stay open and {@code POST /tokenize} needs the key.
 * </ul>
 */
public final class FakeVllm implements AutoCloseable {

    /** A prompt containing this fails its generation, and with it the whole call (HTTP 500). */
    public static final String GENERATION_ERROR = "<generation-error>";

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private final WireMockServer server;
    /** The inference servers the fake can be. */
    public enum Kind { VLLM, LLAMA_CPP, SGLANG, TGI }

    private final String startedWith;
    /** The model it serves (lists, and, as vLLM or SGLang, insists on). */
    public volatile String servedModel;
    public volatile Kind kind = Kind.VLLM;
    /** TGI's --max-client-batch-size. */
    public volatile int maxClientBatchSize = 4;
    public volatile int maxModelLen = 4096;
    public volatile String apiKey;
    public volatile boolean strict;
    /** How long an answer that is not streamed takes to arrive. */
    public volatile int answerMillis;
    /** How long a streamed answer takes to arrive, sent in several chunks; 0 sends it at once. */
    public volatile int streamMillis;
    /** An embedding model's own dimensions here. */
    public static final int EMBEDDING_DIMENSIONS = 8;
    /** Tokens an input to embed costs beside its words ([CLS] and [SEP]). */
    public static final int SPECIAL_TOKENS = 2;
    /** The characters of text in one streamed chunk. */
    public static final int PIECE = 3;

    public FakeVllm(String servedModel) {
        this.startedWith = servedModel;
        this.servedModel = servedModel;
        server = new WireMockServer(WireMockConfiguration.options().dynamicPort().extensions(new Server()));
        server.start();
        server.stubFor(any(urlPathMatching("/v1/.*")).willReturn(aResponse().withTransformers(Server.NAME)));
        server.stubFor(any(urlPathMatching("/(version|props|get_server_info|info|tokenize|apply-template|generate)"))
                .willReturn(aResponse().withTransformers(Server.NAME)));
        server.stubFor(get("/health").willReturn(aResponse().withStatus(200)));
        warmUp();
    }

    /**
     * One call through the JDK client before any test's: a cold server and client can take longer than the gateway's
     * one-second health checks on a loaded machine, which would make a first identity question go unanswered.
     */
    private void warmUp() {
        try (var client = java.net.http.HttpClient.newHttpClient()) {
            client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url() + "/version")).build(),
                    java.net.http.HttpResponse.BodyHandlers.discarding());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        server.resetRequests();
    }

    public String url() {
        return server.baseUrl();
    }

    /**
     * Back to a plain vLLM of the model it started with, no key, the default limits and delays, its requests forgotten:
     * for a fake shared by tests.
     */
    public void reset() {
        servedModel = startedWith;
        kind = Kind.VLLM;
        maxClientBatchSize = 4;
        maxModelLen = 4096;
        apiKey = null;
        strict = false;
        answerMillis = 0;
        streamMillis = 0;
        server.resetRequests();
    }

    public WireMockServer server() {
        return server;
    }

    /** The message lists of every /v1/chat/completions call so far, each message as "role: content". */
    public List<List<String>> chats() {
        List<List<String>> chats = new ArrayList<>();
        for (var request : server.findAll(postRequestedFor(urlEqualTo("/v1/chat/completions")))) {
            List<String> messages = new ArrayList<>();
            JSON.readTree(request.getBodyAsString()).get("messages")
                    .forEach(message -> messages.add(message.get("role").asString() + ": " + message.get("content").asString()));
            chats.add(messages);
        }
        return chats;
    }

    /**
     * The prompt lists of every completion call so far, {@code /v1/completions} and SGLang's {@code /generate} (a string
     * prompt as a list of one), in the order they arrived.
     */
    public List<List<String>> calls() {
        List<List<String>> calls = new ArrayList<>();
        for (var event : server.getAllServeEvents().reversed()) {
            var request = event.getRequest();
            if (request.getMethod().getName().equals("POST") && request.getUrl().equals("/v1/completions")) {
                calls.add(prompts(JSON.readTree(request.getBodyAsString()).get("prompt")));
            } else if (request.getMethod().getName().equals("POST") && request.getUrl().equals("/generate")) {
                calls.add(prompts(JSON.readTree(request.getBodyAsString()).get("text")));
            }
        }
        return calls;
    }

    /** The input lists of every {@code /v1/embeddings} call so far, in the order they arrived. */
    public List<List<String>> embeddingCalls() {
        List<List<String>> calls = new ArrayList<>();
        for (var event : server.getAllServeEvents().reversed()) {
            var request = event.getRequest();
            if (request.getMethod().getName().equals("POST") && request.getUrl().equals("/v1/embeddings")) {
                calls.add(prompts(JSON.readTree(request.getBodyAsString()).get("input")));
            }
        }
        return calls;
    }

    /** The vector the fake answers for an input to embed, as the simulated worker's. */
    public static float[] embedding(String input, int dimensions) {
        return SimulatedWorker.vector(input, dimensions);
    }

    /** The tokens the fake counts for an input to embed: one per word and the special tokens. */
    public static int embeddingTokens(String input) {
        return promptTokens(input) + SPECIAL_TOKENS;
    }

    /** The counts the fake gives a prompt: prompt tokens = words, completion tokens = first word's length, cut. */
    public static int promptTokens(String prompt) {
        return prompt.strip().split("\\s+").length;
    }

    public static int completionTokens(String prompt, int maxTokens) {
        return Math.min(prompt.strip().split("\\s+")[0].length(), maxTokens);
    }

    /** llama-server's message for a prompt over its slot's context (recorded). */
    public static final String LLAMA_CPP_CONTEXT_MESSAGE = "the request exceeds the available context size, try increasing it";

    /** SGLang's message for a prompt longer than the context (tokenizer_manager's validation). */
    public static String sglangContextMessage(int promptTokens, int contextLength) {
        return "The input (" + promptTokens + " tokens) is longer than the model's context length (" + contextLength + " tokens).";
    }

    /** TGI's validation message for a prompt whose tokens and max_new_tokens exceed max_total_tokens. */
    public static String tgiContextMessage(int promptTokens, int maxTokens, int maxTotalTokens) {
        return "Input validation error: `inputs` tokens + `max_new_tokens` must be <= " + maxTotalTokens + ". Given: "
                + promptTokens + " `inputs` tokens and " + maxTokens + " `max_new_tokens`";
    }

    /** The message the current {@link #kind} gives for a prompt over the context. */
    public String contextMessage(int maxTokens, int promptTokens) {
        return switch (kind) {
            case VLLM -> contextLengthMessage(maxTokens, maxModelLen, promptTokens);
            case LLAMA_CPP -> LLAMA_CPP_CONTEXT_MESSAGE;
            case SGLANG -> sglangContextMessage(promptTokens, maxModelLen);
            case TGI -> tgiContextMessage(promptTokens, maxTokens, maxModelLen);
        };
    }

    /** The 400 message vLLM gives when a prompt leaves no room for {@code max_tokens} in the model's context. */
    public static String contextLengthMessage(int maxTokens, int maxModelLen, int promptTokens) {
        return "'max_tokens' or 'max_completion_tokens' is too large: " + maxTokens + ". This model's maximum context "
                + "length is " + maxModelLen + " tokens and your request has " + promptTokens + " input tokens ("
                + maxTokens + " > " + maxModelLen + " - " + promptTokens + "). None";
    }

    private static List<String> prompts(JsonNode prompt) {
        List<String> prompts = new ArrayList<>();
        if (prompt != null && prompt.isString()) {
            prompts.add(prompt.asString());
        } else if (prompt != null) {
            prompt.forEach(each -> prompts.add(each.asString()));
        }
        return prompts;
    }

    @Override
    public void close() {
        server.stop();
    }

    private final class Server implements ResponseDefinitionTransformerV2 {
        static final String NAME = "fake-vllm";

        @Override
        public ResponseDefinition transform(ServeEvent event) {
            var request = event.getRequest();
            Kind server = kind;
            String key = apiKey;
            if (key != null && guarded(server, request.getUrl()) && !("Bearer " + key).equals(request.getHeader("Authorization"))) {
                return server == Kind.LLAMA_CPP
                        ? answer(401, Map.of("error", errorObject("Invalid API Key", "authentication_error", 401)))
                        : answer(401, Map.of("error", "Unauthorized"));
            }
            ResponseDefinition own = own(server, request.getUrl(), request.getBodyAsString());
            if (own != null) {
                return own;
            }
            if (request.getUrl().equals("/v1/models")) {
                return answer(200, Map.of("object", "list", "data", List.of(listed(server))));
            }
            if (request.getUrl().startsWith("/v1/") && JSON.readTree(request.getBodyAsString()).has("stream_options")
                    && !JSON.readTree(request.getBodyAsString()).path("stream").asBoolean(false)) {
                return error(400, "BadRequestError", "Stream options can only be defined when `stream=True`.");
            }
            if (request.getUrl().equals("/v1/chat/completions")) {
                return chat(JSON.readTree(request.getBodyAsString()));
            }
            if (request.getUrl().equals("/v1/embeddings")) {
                return embeddings(JSON.readTree(request.getBodyAsString()));
            }
            if (!request.getUrl().equals("/v1/completions")) {
                return error(404, "NotFoundError", "Not Found");
            }
            JsonNode body = JSON.readTree(request.getBodyAsString());
            if (strict && body.has("return_token_ids")) {
                return answer(400, Map.of("error", errorObject(
                        "Unrecognized request argument supplied: return_token_ids", "invalid_request_error", null)));
            }
            String model = body.get("model").asString();
            if (!model.equals(servedModel) && servesByName(server)) {
                return error(404, "NotFoundError", "The model `" + model + "` does not exist.");
            }
            int maxTokens = body.has("max_tokens") && !body.get("max_tokens").isNull() ? body.get("max_tokens").asInt() : 16;
            boolean returnTokenIds = body.has("return_token_ids") && body.get("return_token_ids").asBoolean()
                    && (server == Kind.VLLM || server == Kind.SGLANG);
            List<String> prompts = prompts(body.get("prompt"));
            if (server == Kind.TGI && prompts.size() > maxClientBatchSize) {
                return answer(422, Map.of("error", "Number of prompts exceeds the maximum allowed batch size of "
                        + maxClientBatchSize, "error_type", "batch size exceeded"));
            }
            for (String prompt : prompts) {
                if (promptTokens(prompt) + maxTokens > maxModelLen) {
                    return tooLong(server, prompt, maxTokens);
                }
            }
            if (server == Kind.LLAMA_CPP && !body.path("stream").asBoolean(false)) {
                return llamaCpp(prompts, maxTokens, model, body.get("prompt").isArray());
            }
            if (body.path("stream").asBoolean(false)) {
                return stream(model, "text_completion", prompts, prompts.stream().map(FakeVllm::promptTokens).toList(),
                        maxTokens, body, false);
            }
            if (prompts.stream().anyMatch(prompt -> prompt.contains(GENERATION_ERROR))) {
                return error(500, "InternalServerError", "Internal server error");
            }
            List<Map<String, Object>> choices = new ArrayList<>();
            int promptTotal = 0;
            int completionTotal = 0;
            for (int i = prompts.size() - 1; i >= 0; i--) {
                String prompt = prompts.get(i);
                int promptTokens = promptTokens(prompt);
                int completionTokens = completionTokens(prompt, maxTokens);
                promptTotal += promptTokens;
                completionTotal += completionTokens;
                Map<String, Object> choice = new HashMap<>();
                choice.put("index", i);
                choice.put("text", prompt.toUpperCase());
                choice.put("finish_reason", completionTokens == maxTokens ? "length" : "stop");
                choice.put("stop_reason", null);
                choice.put("logprobs", null);
                choice.put("prompt_token_ids", returnTokenIds ? ids(promptTokens) : null);
                choice.put("token_ids", returnTokenIds ? ids(completionTokens) : null);
                choices.add(choice);
            }
            return answer(200, answerMillis, Map.of(
                    "id", "cmpl-fake",
                    "object", "text_completion",
                    "model", model,
                    "choices", choices,
                    "usage", Map.of(
                            "prompt_tokens", promptTotal,
                            "completion_tokens", completionTotal,
                            "total_tokens", promptTotal + completionTotal)));
        }


        /** Whether the server checks the key on this path: each guards its own set, as its source shows. */
        private static boolean guarded(Kind server, String url) {
            return switch (server) {
                case VLLM -> url.startsWith("/v1/");
                case LLAMA_CPP -> !url.equals("/health") && !url.equals("/v1/models");
                case SGLANG -> !url.startsWith("/health");
                case TGI -> !url.equals("/health") && !url.equals("/v1/models") && !url.equals("/info");
            };
        }

        /** vLLM and SGLang refuse a model they do not serve with 404; llama.cpp and TGI ignore the name. */
        private static boolean servesByName(Kind server) {
            return server == Kind.VLLM || server == Kind.SGLANG;
        }

        /** The paths one kind of server answers and the others do not: who it is, tokenizing, SGLang's generate. */
        /** OpenAI's embeddings list, the usage of the whole call only (vLLM's and llama.cpp's). */
        private ResponseDefinition embeddings(JsonNode body) {
            List<String> inputs = prompts(body.get("input"));
            int dimensions = body.path("dimensions").asInt(EMBEDDING_DIMENSIONS);
            List<Map<String, Object>> data = new ArrayList<>();
            int tokens = 0;
            for (int i = 0; i < inputs.size(); i++) {
                if (embeddingTokens(inputs.get(i)) > maxModelLen) {
                    return error(400, "BadRequestError", "This model's maximum context length is " + maxModelLen
                            + " tokens. However, you requested " + embeddingTokens(inputs.get(i)) + " tokens in the input for embedding generation.");
                }
                tokens += embeddingTokens(inputs.get(i));
                float[] vector = SimulatedWorker.vector(inputs.get(i), dimensions);
                List<Float> numbers = new ArrayList<>();
                for (float each : vector) {
                    numbers.add(each);
                }
                data.add(Map.of("index", i, "object", "embedding", "embedding", numbers));
            }
            Map<String, Object> usage = new HashMap<>();
            usage.put("prompt_tokens", tokens);
            usage.put("total_tokens", tokens);
            usage.put("completion_tokens", 0);
            usage.put("prompt_tokens_details", null);
            return answer(200, Map.of("id", "embd-1", "object", "list", "created", 1_700_000_000, "model", servedModel,
                    "data", data.reversed(), "usage", usage));
        }

        /**
         * The model's entry in {@code /v1/models} as each server writes it: vLLM's and SGLang's {@code ModelCard} with
         * {@code root} and {@code max_model_len}; llama.cpp's with {@code meta} (the trained context, not the slot's:
         * that is in {@code /props}); TGI's {@code ModelInfo}, owned by the model, with no context at all.
         */
        private Map<String, Object> listed(Kind server) {
            return switch (server) {
                case VLLM, SGLANG -> Map.of("id", servedModel, "object", "model", "created", 1_700_000_000,
                        "owned_by", server == Kind.VLLM ? "vllm" : "sglang", "root", servedModel, "max_model_len", maxModelLen);
                case LLAMA_CPP -> Map.of("id", servedModel, "object", "model", "created", 1_700_000_000, "owned_by", "llamacpp",
                        "meta", Map.of("vocab_type", 1, "n_vocab", 512, "n_ctx_train", Math.max(maxModelLen, 32_768),
                                "n_embd", 64, "n_params", 292_928, "size", 1_185_376));
                case TGI -> Map.of("id", servedModel, "object", "model", "created", 1_700_000_000, "owned_by", servedModel);
            };
        }

        private ResponseDefinition own(Kind server, String url, String body) {
            return switch (url) {
                case "/version" -> server == Kind.VLLM ? answer(200, Map.of("version", "0.11.0")) : notFound();
                case "/props" -> server == Kind.LLAMA_CPP ? answer(200, Map.of(
                        "default_generation_settings", Map.of("n_ctx", maxModelLen), "total_slots", 8,
                        "model_path", servedModel, "build_info", "b0-unknown")) : notFound();
                case "/get_server_info" -> server == Kind.SGLANG ? answer(200, Map.of(
                        "model_path", servedModel, "served_model_name", servedModel, "tp_size", 1, "version", "0.5.4"))
                        : notFound();
                case "/info" -> server == Kind.TGI ? answer(200, Map.of(
                        "model_id", servedModel, "router", "text-generation-router", "version", "3.3.6",
                        "max_client_batch_size", maxClientBatchSize, "max_total_tokens", maxModelLen)) : notFound();
                case "/tokenize" -> server == Kind.VLLM ? tokenize(JSON.readTree(body))
                        : server == Kind.LLAMA_CPP ? answer(200, Map.of("tokens", List.of(64)))
                        : server == Kind.TGI ? answer(200, List.of(Map.of("id", 64, "text", "a", "start", 0, "stop", 1)))
                        : notFound();
                case "/apply-template" -> server == Kind.LLAMA_CPP ? answer(200, Map.of("prompt", chatMl(JSON.readTree(body)))) : notFound();
                case "/generate" -> server == Kind.SGLANG ? generate(JSON.readTree(body)) : notFound();
                default -> null;
            };
        }

        /**
         * vLLM's {@code POST /tokenize}: a chat's {@code messages} counted as its chat completions bill them (each
         * message's words and 2), or a {@code prompt}'s words; {@code count}, {@code max_model_len}, {@code tokens} and
         * {@code token_strs} as vLLM answers (entrypoints/openai/protocol.py {@code TokenizeResponse}).
         */
        private ResponseDefinition tokenize(JsonNode body) {
            int count = 0;
            if (body.has("messages")) {
                for (JsonNode message : body.get("messages")) {
                    count += promptTokens(message.get("content").asString()) + 2;
                }
            } else {
                count = promptTokens(body.path("prompt").asString(""));
            }
            // vLLM's TokenizeResponse, dumped with its unset token_strs as null
            Map<String, Object> tokenized = new java.util.LinkedHashMap<>();
            tokenized.put("count", count);
            tokenized.put("max_model_len", maxModelLen);
            tokenized.put("tokens", java.util.Collections.nCopies(count, 64));
            tokenized.put("token_strs", null);
            return answer(200, tokenized);
        }

        /** llama.cpp's {@code POST /apply-template} with its fallback template, ChatML, as it answered in shared/realworker. */
        private static String chatMl(JsonNode body) {
            StringBuilder text = new StringBuilder();
            for (JsonNode message : body.get("messages")) {
                text.append("<|im_start|>").append(message.get("role").asString()).append('\n')
                        .append(message.get("content").asString()).append("<|im_end|>\n");
            }
            return text.append("<|im_start|>assistant\n").toString();
        }

        private static ResponseDefinition notFound() {
            return answer(404, Map.of("detail", "Not Found"));
        }

        /** Each server's refusal of a prompt that leaves no room for max_tokens in the context. */
        private ResponseDefinition tooLong(Kind server, String prompt, int maxTokens) {
            int tokens = promptTokens(prompt);
            return switch (server) {
                case VLLM -> error(400, "BadRequestError", contextLengthMessage(maxTokens, maxModelLen, tokens));
                case LLAMA_CPP -> answer(400, Map.of("error", Map.of("code", 400,
                        "message", LLAMA_CPP_CONTEXT_MESSAGE, "type", "exceed_context_size_error",
                        "n_prompt_tokens", tokens, "n_ctx", maxModelLen)));
                case SGLANG -> answer(400, Map.of("object", "error", "message", sglangContextMessage(tokens, maxModelLen),
                        "type", "BadRequestError", "param", "", "code", 400));
                case TGI -> answer(422, Map.of("error", tgiContextMessage(tokens, maxTokens, maxModelLen),
                        "error_type", "validation"));
            };
        }

        /**
         * llama-server's answer to prompts that are not streamed: a JSON array of complete answers, one per prompt of a
         * list, each with its own usage; one object for a single prompt (a list of one included).
         */
        private ResponseDefinition llamaCpp(List<String> prompts, int maxTokens, String model, boolean list) {
            if (prompts.stream().anyMatch(prompt -> prompt.contains(GENERATION_ERROR))) {
                return answer(500, Map.of("error", errorObject("Internal server error", "server_error", 500)));
            }
            List<Map<String, Object>> answers = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                String prompt = prompts.get(i);
                int promptTokens = promptTokens(prompt);
                int completionTokens = completionTokens(prompt, maxTokens);
                Map<String, Object> choice = new HashMap<>();
                choice.put("text", prompt.toUpperCase());
                choice.put("index", i);
                choice.put("logprobs", null);
                choice.put("finish_reason", completionTokens == maxTokens ? "length" : "stop");
                answers.add(Map.of(
                        "choices", List.of(choice),
                        "created", 1_796_458_519,
                        "model", model,
                        "system_fingerprint", "b0-unknown",
                        "object", "text_completion",
                        "usage", Map.of("completion_tokens", completionTokens, "prompt_tokens", promptTokens,
                                "total_tokens", promptTokens + completionTokens),
                        "id", "chatcmpl-fake"));
            }
            return answer(200, answerMillis, answers.size() == 1 ? answers.getFirst() : answers);
        }

        /** SGLang's own /generate: one answer per prompt of {@code text}, in prompt order, counts in meta_info. */
        private ResponseDefinition generate(JsonNode body) {
            JsonNode text = body.get("text");
            List<String> prompts = prompts(text);
            int maxTokens = body.path("sampling_params").path("max_new_tokens").asInt(128);
            for (String prompt : prompts) {
                if (promptTokens(prompt) + maxTokens > maxModelLen) {
                    return answer(400, Map.of("error", Map.of("message", sglangContextMessage(promptTokens(prompt), maxModelLen))));
                }
            }
            if (prompts.stream().anyMatch(prompt -> prompt.contains(GENERATION_ERROR))) {
                return answer(500, Map.of("error", Map.of("message", "Internal server error")));
            }
            List<Map<String, Object>> answers = new ArrayList<>();
            for (String prompt : prompts) {
                int completionTokens = completionTokens(prompt, maxTokens);
                answers.add(Map.of("text", prompt.toUpperCase(), "meta_info", Map.of(
                        "id", "fake", "prompt_tokens", promptTokens(prompt), "completion_tokens", completionTokens,
                        "cached_tokens", 0,
                        "finish_reason", completionTokens == maxTokens
                                ? Map.of("type", "length", "length", completionTokens)
                                : Map.of("type", "stop", "matched", 2))));
            }
            return answer(200, answerMillis, text.isString() ? answers.getFirst() : answers);
        }

        /** A chat: the last message upper-cased; prompt tokens = every message's words plus 2 per message (template). */
        private ResponseDefinition chat(JsonNode body) {
            String model = body.get("model").asString();
            if (!model.equals(servedModel) && servesByName(kind)) {
                return error(404, "NotFoundError", "The model `" + model + "` does not exist.");
            }
            int maxTokens = body.has("max_tokens") && !body.get("max_tokens").isNull() ? body.get("max_tokens").asInt() : 16;
            int promptTokens = 0;
            String last = "";
            for (JsonNode message : body.get("messages")) {
                last = message.get("content").asString();
                promptTokens += promptTokens(last) + 2;
            }
            if (body.path("stream").asBoolean(false)) {
                return stream(model, "chat.completion.chunk", List.of(last), List.of(promptTokens), maxTokens, body, true);
            }
            int completionTokens = completionTokens(last, maxTokens);
            Map<String, Object> choice = new HashMap<>();
            choice.put("index", 0);
            choice.put("message", Map.of("role", "assistant", "content", last.toUpperCase()));
            choice.put("logprobs", null);
            choice.put("finish_reason", completionTokens == maxTokens ? "length" : "stop");
            return answer(200, Map.of(
                    "id", "chatcmpl-fake",
                    "object", "chat.completion",
                    "model", model,
                    "choices", List.of(choice),
                    "usage", Map.of(
                            "prompt_tokens", promptTokens,
                            "completion_tokens", completionTokens,
                            "total_tokens", promptTokens + completionTokens)));
        }

        /**
         * A streamed answer: rounds of one piece per unfinished prompt, the last prompt first; the running counts of a
         * prompt grow with its pieces, and reach its full counts on its last one.
         */
        private ResponseDefinition stream(String model, String object, List<String> prompts, List<Integer> promptTokens,
                int maxTokens, JsonNode body, boolean chat) {
            JsonNode options = body.path("stream_options");
            boolean usage = options.path("include_usage").asBoolean(false);
            boolean continuous = usage && options.path("continuous_usage_stats").asBoolean(false);
            boolean fails = prompts.stream().anyMatch(prompt -> prompt.contains(GENERATION_ERROR));
            StringBuilder events = new StringBuilder();
            int[] sent = new int[prompts.size()];
            List<String> texts = prompts.stream().map(String::toUpperCase).toList();
            List<Integer> counts = prompts.stream().map(prompt -> completionTokens(prompt, maxTokens)).toList();
            int rounds = 0;
            boolean more = true;
            while (more) {
                more = false;
                for (int i = prompts.size() - 1; i >= 0; i--) {
                    String text = texts.get(i);
                    if (sent[i] >= text.length()) {
                        continue;
                    }
                    String piece = text.substring(sent[i], Math.min(text.length(), sent[i] + PIECE));
                    sent[i] += piece.length();
                    boolean last = sent[i] == text.length();
                    int completionTokens = counts.get(i);
                    // the count grows with the text and is whole on the last piece
                    int soFar = last ? completionTokens : (int) Math.min(completionTokens, (long) completionTokens * sent[i] / text.length());
                    Map<String, Object> choice = new HashMap<>();
                    choice.put("index", i);
                    if (chat) {
                        choice.put("delta", Map.of("content", piece));
                    } else {
                        choice.put("text", piece);
                    }
                    choice.put("logprobs", null);
                    choice.put("finish_reason", last ? (completionTokens == maxTokens ? "length" : "stop") : null);
                    Map<String, Object> chunk = new HashMap<>();
                    chunk.put("id", "cmpl-fake");
                    chunk.put("object", object);
                    chunk.put("model", model);
                    chunk.put("choices", List.of(choice));
                    if (continuous) {
                        chunk.put("usage", Map.of("prompt_tokens", promptTokens.get(i), "completion_tokens", soFar,
                                "total_tokens", promptTokens.get(i) + soFar));
                    }
                    events.append("data: ").append(JSON.writeValueAsString(chunk)).append("\n\n");
                    more |= !last;
                }
                rounds++;
                if (fails && rounds == 1) {
                    events.append("data: ").append(JSON.writeValueAsString(Map.of("error", errorObject(
                            "The generation failed", "InternalServerError", 500)))).append("\n\n");
                    events.append("data: [DONE]\n\n");
                    return streamed(events);
                }
            }
            if (usage) {
                int promptTotal = promptTokens.stream().mapToInt(Integer::intValue).sum();
                int completionTotal = prompts.stream().mapToInt(prompt -> completionTokens(prompt, maxTokens)).sum();
                events.append("data: ").append(JSON.writeValueAsString(Map.of("id", "cmpl-fake", "object", object,
                        "model", model, "choices", List.of(), "usage", Map.of("prompt_tokens", promptTotal,
                                "completion_tokens", completionTotal, "total_tokens", promptTotal + completionTotal))))
                        .append("\n\n");
            }
            events.append("data: [DONE]\n\n");
            return streamed(events);
        }

        private ResponseDefinition streamed(StringBuilder events) {
            var response = aResponse().withStatus(200)
                    .withHeader("Content-Type", "text/event-stream; charset=utf-8")
                    .withBody(events.toString());
            int millis = streamMillis;
            if (millis > 0) {
                response.withChunkedDribbleDelay(Math.max(2, Math.min(millis / 20, events.length() / 64)), millis);
            }
            return response.build();
        }

        private static ResponseDefinition error(int status, String type, String message) {
            return answer(status, Map.of("error", errorObject(message, type, status)));
        }

        private static Map<String, Object> errorObject(String message, String type, Integer code) {
            Map<String, Object> error = new HashMap<>();
            error.put("message", message);
            error.put("type", type);
            error.put("param", null);
            error.put("code", code);
            return error;
        }

        private static ResponseDefinition answer(int status, Object body) {
            return answer(status, 0, body);
        }

        private static ResponseDefinition answer(int status, int delayMillis, Object body) {
            return aResponse().withStatus(status)
                    .withHeader("Content-Type", "application/json")
                    .withBody(JSON.writeValueAsString(body))
                    .withFixedDelay(delayMillis)
                    .build();
        }

        private static List<Integer> ids(int count) {
            List<Integer> ids = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                ids.add(1000 + i);
            }
            return ids;
        }

        @Override
        public boolean applyGlobally() {
            return false;
        }

        @Override
        public String getName() {
            return NAME;
        }
    }
}
