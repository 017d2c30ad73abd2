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
 */
public final class FakeVllm implements AutoCloseable {

    /** A prompt containing this fails its generation, and with it the whole call (HTTP 500). */
    public static final String GENERATION_ERROR = "<generation-error>";

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private final WireMockServer server;
    private final String servedModel;
    public volatile int maxModelLen = 4096;
    public volatile String apiKey;
    public volatile boolean strict;
    /** How long an answer that is not streamed takes to arrive. */
    public volatile int answerMillis;
    /** How long a streamed answer takes to arrive, sent in several chunks; 0 sends it at once. */
    public volatile int streamMillis;
    /** The characters of text in one streamed chunk. */
    public static final int PIECE = 3;

    public FakeVllm(String servedModel) {
        this.servedModel = servedModel;
        server = new WireMockServer(WireMockConfiguration.options().dynamicPort().extensions(new Server()));
        server.start();
        server.stubFor(any(urlPathMatching("/v1/.*")).willReturn(aResponse().withTransformers(Server.NAME)));
        server.stubFor(get("/health").willReturn(aResponse().withStatus(200)));
    }

    public String url() {
        return server.baseUrl();
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

    /** The prompt lists of every /v1/completions call so far (a string prompt as a list of one). */
    public List<List<String>> calls() {
        List<List<String>> calls = new ArrayList<>();
        for (var request : server.findAll(postRequestedFor(urlEqualTo("/v1/completions")))) {
            calls.add(prompts(JSON.readTree(request.getBodyAsString()).get("prompt")));
        }
        return calls;
    }

    /** The counts the fake gives a prompt: prompt tokens = words, completion tokens = first word's length, cut. */
    public static int promptTokens(String prompt) {
        return prompt.strip().split("\\s+").length;
    }

    public static int completionTokens(String prompt, int maxTokens) {
        return Math.min(prompt.strip().split("\\s+")[0].length(), maxTokens);
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
            String key = apiKey;
            if (key != null && !("Bearer " + key).equals(request.getHeader("Authorization"))) {
                return answer(401, Map.of("error", "Unauthorized"));
            }
            if (request.getUrl().equals("/v1/models")) {
                return answer(200, Map.of("object", "list", "data", List.of(Map.of(
                        "id", servedModel, "object", "model", "created", 1_700_000_000, "owned_by", "vllm",
                        "root", servedModel, "max_model_len", maxModelLen))));
            }
            if (request.getUrl().startsWith("/v1/") && JSON.readTree(request.getBodyAsString()).has("stream_options")
                    && !JSON.readTree(request.getBodyAsString()).path("stream").asBoolean(false)) {
                return error(400, "BadRequestError", "Stream options can only be defined when `stream=True`.");
            }
            if (request.getUrl().equals("/v1/chat/completions")) {
                return chat(JSON.readTree(request.getBodyAsString()));
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
            if (!model.equals(servedModel)) {
                return error(404, "NotFoundError", "The model `" + model + "` does not exist.");
            }
            int maxTokens = body.has("max_tokens") && !body.get("max_tokens").isNull() ? body.get("max_tokens").asInt() : 16;
            boolean returnTokenIds = body.has("return_token_ids") && body.get("return_token_ids").asBoolean();
            List<String> prompts = prompts(body.get("prompt"));
            for (String prompt : prompts) {
                if (promptTokens(prompt) + maxTokens > maxModelLen) {
                    return error(400, "BadRequestError", contextLengthMessage(maxTokens, maxModelLen, promptTokens(prompt)));
                }
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


        /** A chat: the last message upper-cased; prompt tokens = every message's words plus 2 per message (template). */
        private ResponseDefinition chat(JsonNode body) {
            String model = body.get("model").asString();
            if (!model.equals(servedModel)) {
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
