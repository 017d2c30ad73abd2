package dev.batchgateway.worker;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.post;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.github.tomakehurst.wiremock.extension.ResponseDefinitionTransformerV2;
import com.github.tomakehurst.wiremock.http.ResponseDefinition;
import com.github.tomakehurst.wiremock.stubbing.ServeEvent;
import java.util.Map;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * An Ollama serving one thinking model, on WireMock, that honours {@code raw} and {@code think} as Ollama does
 * (SERVERS.md): without {@code raw} the prompt is wrapped in the model's chat template and system prompt, which
 * {@code prompt_eval_count} counts ({@link #TEMPLATE_TOKENS} more than the prompt's words); without
 * {@code "think": false} the model thinks first (default since 0.12.4): the reasoning goes to {@code thinking},
 * {@code eval_count} counts it, and with {@code num_predict} spent on it {@code response} stays empty. The answer is the
 * prompt upper-cased, one token per word. {@code /api/show} answers for the served model, 404 for any other;
 * {@code GET /api/ps} lists no model loaded, so the context Ollama would run it with stays unknown.
 *
 * <p>{@code /api/embed} takes {@code input} as a string or a list and answers {@code embeddings} in input order
 * ({@link SimulatedWorker#vector}, {@link #EMBEDDING_DIMENSIONS} dimensions or {@code dimensions}) and the call's {@code
 * prompt_eval_count} (a token per word of every input), as Ollama does; {@link #embedCalls} counts its calls.
 *
 * <p>With {@code "stream": true} — Ollama's default when {@code stream} is absent — the answer is one JSON object per
 * line, a word of {@code response} each, and a last line with {@code "done": true}, the reason and the counts. A prompt
 * containing {@link #STREAM_ERROR} breaks off after its first word with an {@code {"error": …}} line, as Ollama reports
 * a failure once it has begun streaming.
 */
final class FakeOllama implements AutoCloseable {

    static final int TEMPLATE_TOKENS = 12;
    static final int THINKING_TOKENS = 50;
    static final String STREAM_ERROR = "<stream-error>";
    static final int EMBEDDING_DIMENSIONS = 8;
    /** The input lists of the {@code /api/embed} calls so far. */
    final java.util.List<java.util.List<String>> embedCalls = new java.util.concurrent.CopyOnWriteArrayList<>();
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private final WireMockServer server;
    private final String servedModel;

    FakeOllama(String servedModel) {
        this.servedModel = servedModel;
        server = new WireMockServer(WireMockConfiguration.options().dynamicPort().extensions(new Server()));
        server.start();
        server.stubFor(post("/api/generate").willReturn(aResponse().withTransformers(Server.NAME)));
        server.stubFor(post("/api/show").willReturn(aResponse().withTransformers(Server.NAME)));
        server.stubFor(get("/api/ps").willReturn(aResponse().withStatus(200)
                .withHeader("Content-Type", "application/json; charset=utf-8").withBody("{\"models\":[]}")));
        server.stubFor(post("/api/embed").willReturn(aResponse().withTransformers(Server.NAME)));
    }

    String url() {
        return server.baseUrl();
    }

    @Override
    public void close() {
        server.stop();
    }

    private final class Server implements ResponseDefinitionTransformerV2 {
        static final String NAME = "fake-ollama";

        @Override
        public ResponseDefinition transform(ServeEvent event) {
            JsonNode body = JSON.readTree(event.getRequest().getBodyAsString());
            if (!servedModel.equals(body.path("model").asString())) {
                return answer(404, Map.of("error", "model '" + body.path("model").asString() + "' not found"));
            }
            if (event.getRequest().getUrl().equals("/api/show")) {
                // as GetModelInfo answers (server/routes.go): the trained context in model_info, no num_ctx set
                return answer(200, Map.of("modelfile", "FROM " + servedModel, "parameters", "stop                           \"<|im_end|>\"",
                        "details", Map.of("format", "gguf", "family", "qwen3"), "model_info", Map.of("general.architecture", "qwen3",
                        "qwen3.context_length", 40960), "capabilities", new String[] {"completion", "thinking"}));
            }
            if (event.getRequest().getUrl().equals("/api/embed")) {
                return embed(body);
            }
            String prompt = body.get("prompt").asString();
            int words = prompt.strip().split("\\s+").length;
            boolean raw = body.path("raw").asBoolean(false);
            boolean think = !body.has("think") || body.get("think").asBoolean();
            int numPredict = body.path("options").path("num_predict").asInt(-1);
            int budget = numPredict < 0 ? Integer.MAX_VALUE : numPredict;
            int thinking = think ? Math.min(THINKING_TOKENS, budget) : 0;
            int answered = Math.min(words, budget - thinking);
            String response = String.join(" ", java.util.Arrays.copyOf(prompt.toUpperCase().strip().split("\\s+"), answered));
            String reason = thinking + answered >= budget ? "length" : "stop";
            int promptEvalCount = words + (raw ? 0 : TEMPLATE_TOKENS);
            if (!body.has("stream") || body.get("stream").asBoolean()) {
                StringBuilder lines = new StringBuilder();
                String[] pieces = response.split(" ");
                for (int i = 0; i < pieces.length; i++) {
                    lines.append(JSON.writeValueAsString(Map.of("model", servedModel, "created_at", "2026-11-24T08:00:00Z",
                            "response", i == 0 ? pieces[i] : " " + pieces[i], "done", false))).append('\n');
                    if (prompt.contains(STREAM_ERROR)) {
                        lines.append(JSON.writeValueAsString(Map.of("error", "an error was encountered while running the model"))).append('\n');
                        return aResponse().withStatus(200).withHeader("Content-Type", "application/x-ndjson")
                                .withBody(lines.toString()).build();
                    }
                }
                lines.append(JSON.writeValueAsString(Map.of("model", servedModel, "created_at", "2026-11-24T08:00:00Z",
                        "response", "", "done", true, "done_reason", reason,
                        "prompt_eval_count", promptEvalCount, "eval_count", thinking + answered))).append('\n');
                return aResponse().withStatus(200).withHeader("Content-Type", "application/x-ndjson")
                        .withBody(lines.toString()).build();
            }
            return answer(200, Map.of(
                    "model", servedModel,
                    "created_at", "2026-11-24T08:00:00Z",
                    "response", response,
                    "thinking", think ? "Let me think about this. ".repeat(2) : "",
                    "done", true,
                    "done_reason", reason,
                    "prompt_eval_count", promptEvalCount,
                    "eval_count", thinking + answered));
        }

        private ResponseDefinition embed(JsonNode body) {
            java.util.List<String> inputs = new java.util.ArrayList<>();
            if (body.get("input").isString()) {
                inputs.add(body.get("input").asString());
            } else {
                body.get("input").forEach(input -> inputs.add(input.asString()));
            }
            embedCalls.add(inputs);
            int dimensions = body.path("dimensions").asInt(EMBEDDING_DIMENSIONS);
            java.util.List<float[]> embeddings = inputs.stream().map(input -> SimulatedWorker.vector(input, dimensions)).toList();
            int words = inputs.stream().mapToInt(input -> input.strip().split("\\s+").length).sum();
            return answer(200, Map.of("model", servedModel, "embeddings", embeddings, "total_duration", 14_143_917,
                    "load_duration", 1_019_500, "prompt_eval_count", words));
        }

        private static ResponseDefinition answer(int status, Object body) {
            return aResponse().withStatus(status).withHeader("Content-Type", "application/json")
                    .withBody(JSON.writeValueAsString(body)).build();
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
