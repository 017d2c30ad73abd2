package dev.batchgateway.worker;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.okJson;
import static com.github.tomakehurst.wiremock.client.WireMock.post;
import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.github.tomakehurst.wiremock.extension.ResponseDefinitionTransformerV2;
import com.github.tomakehurst.wiremock.http.ResponseDefinition;
import com.github.tomakehurst.wiremock.stubbing.ServeEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A vLLM OpenAI-compatible server on WireMock that really completes: for each prompt of {@code /v1/completions} it
 * answers the prompt upper-cased, with one prompt token id per word and one completion token id per character of the
 * prompt's first word, cut to {@code max_tokens} — so every prompt has its own counts. Choices come back in reverse
 * order, as a server may send them. {@code /health} answers 200.
 */
public final class FakeVllm implements AutoCloseable {

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private final WireMockServer server;

    public FakeVllm() {
        server = new WireMockServer(WireMockConfiguration.options().dynamicPort().extensions(new Completer()));
        server.start();
        server.stubFor(post("/v1/completions").willReturn(aResponse().withTransformers(Completer.NAME)));
        server.stubFor(get("/health").willReturn(aResponse().withStatus(200)));
    }

    public String url() {
        return server.baseUrl();
    }

    public WireMockServer server() {
        return server;
    }

    /** The prompt lists of every /v1/completions call so far. */
    public List<List<String>> calls() {
        List<List<String>> calls = new ArrayList<>();
        for (var request : server.findAll(postRequestedFor(urlEqualTo("/v1/completions")))) {
            List<String> prompts = new ArrayList<>();
            JSON.readTree(request.getBodyAsString()).get("prompt").forEach(prompt -> prompts.add(prompt.asString()));
            calls.add(prompts);
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

    @Override
    public void close() {
        server.stop();
    }

    private static final class Completer implements ResponseDefinitionTransformerV2 {
        static final String NAME = "fake-vllm";

        @Override
        public ResponseDefinition transform(ServeEvent event) {
            JsonNode request = JSON.readTree(event.getRequest().getBodyAsString());
            int maxTokens = request.get("max_tokens").asInt();
            List<String> prompts = new ArrayList<>();
            request.get("prompt").forEach(prompt -> prompts.add(prompt.asString()));
            List<Map<String, Object>> choices = new ArrayList<>();
            int promptTotal = 0;
            int completionTotal = 0;
            for (int i = prompts.size() - 1; i >= 0; i--) {
                String prompt = prompts.get(i);
                int promptTokens = promptTokens(prompt);
                int completionTokens = completionTokens(prompt, maxTokens);
                promptTotal += promptTokens;
                completionTotal += completionTokens;
                choices.add(Map.of(
                        "index", i,
                        "text", prompt.toUpperCase(),
                        "finish_reason", completionTokens == maxTokens ? "length" : "stop",
                        "prompt_token_ids", ids(promptTokens),
                        "token_ids", ids(completionTokens)));
            }
            var answer = Map.of(
                    "id", "cmpl-fake",
                    "object", "text_completion",
                    "model", request.get("model").asString(),
                    "choices", choices,
                    "usage", Map.of(
                            "prompt_tokens", promptTotal,
                            "completion_tokens", completionTotal,
                            "total_tokens", promptTotal + completionTotal));
            return okJson(JSON.writeValueAsString(answer)).build();
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
