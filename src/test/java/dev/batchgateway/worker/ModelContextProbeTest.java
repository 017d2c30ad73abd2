package dev.batchgateway.worker;

import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.okJson;
import static com.github.tomakehurst.wiremock.client.WireMock.post;
import static org.assertj.core.api.Assertions.assertThat;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import dev.batchgateway.completion.ChatTemplate;
import dev.batchgateway.completion.ModelContext;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A worker learns its model's context at its health check, where each server reports it (FakeVllm answers as each
 * server does: vLLM's {@code max_model_len} in {@code /v1/models}, llama.cpp's slot {@code n_ctx} in {@code /props}, TGI's
 * {@code max_total_tokens} in {@code /info}; Ollama's {@code /api/show} and {@code /api/ps} as Ollama answers them), with the chat template
 * measured where the server can be asked, and learns it again when it changes.
 */
class ModelContextProbeTest {

    private static final String MODEL = "served/model";
    private static final FakeVllm server = new FakeVllm(MODEL);
    private final List<AutoCloseable> workers = new ArrayList<>();

    @BeforeEach
    void resetTheServer() {
        server.reset();
    }

    @AfterEach
    void closeWorkers() throws Exception {
        for (AutoCloseable worker : workers) {
            worker.close();
        }
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private OpenAiWorker worker() {
        var worker = new OpenAiWorker(new WorkerEndpoint(server.url(), Duration.ofSeconds(5), Duration.ofSeconds(20)),
                MODEL, Dialect.OPENAI);
        workers.add(worker);
        return worker;
    }

    @Test
    void vllmReportsMaxModelLenAndItsTokenizeCountsTheTemplate() {
        // Given vLLM serving a model of 8,192 tokens' context
        server.maxModelLen = 8192;
        var worker = worker();
        assertThat(worker.context()).as("before any check").isEqualTo(ModelContext.UNREPORTED);

        // When it is checked
        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);

        // Then the context is vLLM's max_model_len, refused beyond; the template as /tokenize counts the probes:
        // 3 for a message of one word, 6 for two, 9 for three (the fake bills each message its words and 2)
        assertThat(worker.context()).isEqualTo(ModelContext.of(8192, true, new ChatTemplate(0, 3)));
    }

    @Test
    void llamaCppReportsItsSlotsContextAndItsAppliedTemplateBoundsTheOverhead() {
        // Given llama.cpp with slots of 512 tokens (-c 4096 -np 8, as recorded in shared/realworker)
        server.kind = FakeVllm.Kind.LLAMA_CPP;
        server.maxModelLen = 512;
        var worker = worker();

        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);

        // Then its context is a slot's n_ctx, generation stops there (no refusal), and the ChatML fallback's text,
        // a byte a token, measures 20 a conversation and 32 a message
        assertThat(worker.context()).isEqualTo(ModelContext.of(512, false, new ChatTemplate(20, 32)));
    }

    @Test
    void tgiReportsMaxTotalTokensAndItsTemplateIsNotMeasured() {
        server.kind = FakeVllm.Kind.TGI;
        server.maxModelLen = 2048;
        var worker = worker();

        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);

        assertThat(worker.context()).isEqualTo(ModelContext.of(2048, true, ChatTemplate.UNMEASURED));
    }

    @Test
    void aContextThatChangesIsLearnedAtTheNextCheck() {
        var worker = worker();
        worker.health();
        assertThat(worker.context().tokens()).hasValue(4096);

        // When the server restarts with a longer context
        server.maxModelLen = 32_768;
        worker.health();

        // Then the next check learns it
        assertThat(worker.context().tokens()).hasValue(32_768);
    }

    @Test
    void aPoolAgreesOnItsServersSmallestContext() {
        var small = new FakeVllm(MODEL);
        try {
            small.maxModelLen = 2048;
            var first = worker();
            var second = new OpenAiWorker(new WorkerEndpoint(small.url(), Duration.ofSeconds(5), Duration.ofSeconds(20)),
                    MODEL, Dialect.OPENAI);
            workers.add(second);
            var pool = new WorkerPool(List.of(first, second), 1, Duration.ofSeconds(1), Duration.ofSeconds(1),
                    dev.batchgateway.completion.Ticker.system());

            assertThat(pool.context(MODEL)).as("no server checked yet").isEqualTo(ModelContext.UNREPORTED);
            pool.health();

            assertThat(pool.context(MODEL).tokens()).hasValue(2048);
        } finally {
            small.close();
        }
    }

    @Test
    void ollamaReportsItsModelfilesNumCtxElseTheContextItRunsTheModelWith() {
        var ollama = new WireMockServer(WireMockConfiguration.options().dynamicPort());
        ollama.start();
        try {
            var worker = new OllamaWorker(new WorkerEndpoint(ollama.baseUrl(), Duration.ofSeconds(5), Duration.ofSeconds(20)),
                    "llama3.2");
            workers.add(worker);
            // Given /api/show as Ollama answers it (server/routes.go GetModelInfo): model_info with the architecture's
            // trained context_length, parameters without num_ctx, and the model not loaded (/api/ps lists nothing)
            ollama.stubFor(post("/api/show").willReturn(okJson("""
                    {"modelfile":"FROM llama3.2:latest","parameters":"stop                           \\"<|eot_id|>\\"",
                     "template":"{{ .Prompt }}","details":{"family":"llama"},
                     "model_info":{"general.architecture":"llama","llama.context_length":131072,"llama.embedding_length":2048},
                     "capabilities":["completion","tools"],"modified_at":"2026-11-24T08:00:00Z"}""")));
            ollama.stubFor(get("/api/ps").willReturn(okJson("{\"models\":[]}")));

            // Then the trained context is not taken for the one Ollama runs (OLLAMA_CONTEXT_LENGTH, else 4k to 256k)
            assertThat(worker.health()).isEqualTo(WorkerHealth.UP);
            assertThat(worker.context()).isEqualTo(new ModelContext(OptionalInt.empty(), false, ChatTemplate.UNMEASURED));

            // Given the model loaded: /api/ps says the context it runs with, under its shortest name
            ollama.stubFor(get("/api/ps").willReturn(okJson("""
                    {"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","size":3311521792,"digest":"a80c4f17acd5",
                     "details":{"family":"llama"},"expires_at":"2026-11-24T08:05:00Z","size_vram":3311521792,"context_length":4096}]}""")));
            worker.health();
            assertThat(worker.context()).isEqualTo(ModelContext.of(4096, false, ChatTemplate.UNMEASURED));

            // Given the model unloaded again after its keep-alive: the context it ran with still holds
            ollama.stubFor(get("/api/ps").willReturn(okJson("{\"models\":[]}")));
            worker.health();
            assertThat(worker.context()).isEqualTo(ModelContext.of(4096, false, ChatTemplate.UNMEASURED));

            // Given a Modelfile that sets num_ctx and a system prompt of 14 bytes
            ollama.stubFor(post("/api/show").willReturn(okJson("""
                    {"parameters":"num_ctx                        8192\\nstop                           \\"<|eot_id|>\\"",
                     "system":"Be brief. Now.","model_info":{"llama.context_length":131072}}""")));
            worker.health();
            assertThat(worker.context()).isEqualTo(ModelContext.of(8192, false,
                    new ChatTemplate(ChatTemplate.UNMEASURED.perConversation() + 14, ChatTemplate.UNMEASURED.perMessage())));

            // Given a num_ctx beyond what the model was trained on: Ollama caps it there (llm/server.go)
            ollama.stubFor(post("/api/show").willReturn(okJson("""
                    {"parameters":"num_ctx                        262144","model_info":{"llama.context_length":131072}}""")));
            worker.health();
            assertThat(worker.context().tokens()).hasValue(131_072);
        } finally {
            ollama.stop();
        }
    }

    @Test
    void sglangReportsMaxModelLenInItsModelList() {
        server.kind = FakeVllm.Kind.SGLANG;
        server.maxModelLen = 16_384;
        var worker = worker();

        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);

        assertThat(worker.context()).isEqualTo(ModelContext.of(16_384, true, ChatTemplate.UNMEASURED));
    }
}
