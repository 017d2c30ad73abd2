package dev.batchgateway.worker;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.equalToJson;
import static com.github.tomakehurst.wiremock.client.WireMock.get;
import static com.github.tomakehurst.wiremock.client.WireMock.matchingJsonPath;
import static com.github.tomakehurst.wiremock.client.WireMock.okJson;
import static com.github.tomakehurst.wiremock.client.WireMock.post;
import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import com.sun.net.httpserver.HttpServer;
import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.Prompt;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import tools.jackson.databind.json.JsonMapper;

/** The Ollama adapter against replayed Ollama answers, and its fan-out against a server that counts who is waiting. */
class OllamaWorkerTest {

    private final WireMockServer ollama = new WireMockServer(WireMockConfiguration.options().dynamicPort());
    private OllamaWorker worker;

    @BeforeEach
    void start() {
        ollama.start();
        worker = new OllamaWorker(new WorkerEndpoint(ollama.baseUrl(), Duration.ofSeconds(5), Duration.ofSeconds(20)), "llama3.2:1b");
    }

    @AfterEach
    void stop() {
        worker.close();
        ollama.stop();
    }

    @Test
    void eachPromptIsOneGenerateCallAndCarriesItsOwnCounts() {
        // Given Ollama answering two prompts, each with its own counts
        stubGenerate("Why is the sky blue?", "Rayleigh scattering.", 11, 5, "stop");
        stubGenerate("Count to ten", "1, 2, 3, 4, 5, 6, 7", 6, 16, "length");

        // When a batch of both is completed
        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(16),
                List.of("Why is the sky blue?", "Count to ten")));

        // Then each prompt has Ollama's counts exactly
        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("Rayleigh scattering.", new TokenUsage(11, 5), FinishReason.STOP),
                new WorkerOutcome.Generated("1, 2, 3, 4, 5, 6, 7", new TokenUsage(6, 16), FinishReason.LENGTH));

        // And each call asked for one complete answer, cut at max tokens
        ollama.verify(postRequestedFor(urlEqualTo("/api/generate")).withRequestBody(equalToJson("""
                {"model":"llama3.2:1b","prompt":"Count to ten","raw":true,"think":false,"stream":false,
                 "options":{"num_predict":16}}""")));
        ollama.verify(2, postRequestedFor(urlEqualTo("/api/generate")));
    }

    @Test
    void aFailedPromptFailsAloneAndTheOthersKeepTheirAnswers() {
        // Given Ollama failing one prompt of three
        stubGenerate("a", "A", 1, 1, "stop");
        ollama.stubFor(post("/api/generate").withRequestBody(matchingJsonPath("$.prompt", equalTo("b")))
                .willReturn(aResponse().withStatus(500).withBody("{\"error\":\"model crashed\"}")));
        stubGenerate("c", "C", 1, 1, "stop");

        // When the batch is completed
        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(8), List.of("a", "b", "c")));

        // Then only that prompt failed, as a bad answer naming the status
        assertThat(outcomes.get(0)).isInstanceOf(WorkerOutcome.Generated.class);
        assertThat(outcomes.get(1)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessageContaining("HTTP 500")
                .hasMessageNotContaining("crashed"));
        assertThat(outcomes.get(2)).isInstanceOf(WorkerOutcome.Generated.class);
    }

    @Test
    void whenEveryPromptFailsTheBatchFails() {
        // Given Ollama failing everything
        ollama.stubFor(post("/api/generate").willReturn(aResponse().withStatus(503)));

        // When a batch is completed, then the batch as a whole fails
        assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(8), List.of("a", "b"))))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessageContaining("HTTP 503");
    }

    @Test
    void anAnswerWithoutCountsIsABadAnswer() {
        // Given an answer without prompt_eval_count
        ollama.stubFor(post("/api/generate").willReturn(okJson("""
                {"model":"llama3.2:1b","response":"hi","done":true,"done_reason":"stop","eval_count":3}""")));

        // When a prompt is completed, then it fails: it could not be billed exactly
        assertThatThrownBy(() -> worker.complete(new Batch(1, new GenerationParameters(8), List.of("a"))))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessageContaining("prompt_eval_count");
    }

    @Test
    void eightPromptsAreEightCallsInFlightTogether() throws Exception {
        // Given an Ollama that holds each call until all eight have arrived (or 20 s have passed)
        var arrived = new CountDownLatch(8);
        var inFlight = new AtomicInteger();
        var mostInFlight = new AtomicInteger();
        var server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 50);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/api/generate", exchange -> {
            String prompt = JsonMapper.builder().build().readTree(exchange.getRequestBody().readAllBytes()).get("prompt").asString();
            mostInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            arrived.countDown();
            boolean together = false;
            try {
                together = arrived.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            inFlight.decrementAndGet();
            byte[] body = """
                    {"model":"llama3.2:1b","response":"%s","done":true,"done_reason":"stop","prompt_eval_count":%d,"eval_count":2}"""
                    .formatted(prompt.toUpperCase(), prompt.length()).getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Content-Type", "application/json");
            exchange.sendResponseHeaders(together ? 200 : 500, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
        List<String> prompts = new ArrayList<>();
        for (int i = 1; i <= 8; i++) {
            prompts.add("p".repeat(i));
        }
        try (var fanOut = new OllamaWorker(new WorkerEndpoint(
                "http://127.0.0.1:" + server.getAddress().getPort(), Duration.ofSeconds(5), Duration.ofSeconds(30)), "llama3.2:1b")) {
            // When a batch of eight is completed
            List<WorkerOutcome> outcomes = fanOut.complete(new Batch(1, new GenerationParameters(8), prompts));

            // Then all eight calls were in flight at once, and each prompt has its own answer
            assertThat(mostInFlight.get()).isEqualTo(8);
            for (int i = 0; i < 8; i++) {
                assertThat(outcomes.get(i)).isEqualTo(new WorkerOutcome.Generated(
                        prompts.get(i).toUpperCase(), new TokenUsage(i + 1, 2), FinishReason.STOP));
            }
        } finally {
            server.stop(0);
        }
    }

    @Test
    void healthIsTheModelBeingThere() {
        // Given an Ollama that has the model, then up
        ollama.stubFor(post("/api/show").withRequestBody(equalToJson("{\"model\":\"llama3.2:1b\"}"))
                .willReturn(okJson("{\"modelfile\":\"FROM llama3.2:1b\",\"details\":{\"family\":\"llama\"}}")));
        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);

        // Given one that has not pulled it (Ollama's own 404), then down, saying how to fix it
        ollama.stubFor(post("/api/show").willReturn(aResponse().withStatus(404)
                .withBody("{\"error\":\"model 'llama3.2:1b' not found\"}")));
        assertThat(worker.health()).isEqualTo(WorkerHealth.misconfigured("model llama3.2:1b is not served by worker 1"
                + ": 404, pull it first: ollama pull llama3.2:1b"));

        // Given a server error, then down with Ollama's message
        ollama.stubFor(post("/api/show").willReturn(aResponse().withStatus(500).withBody("{\"error\":\"disk full\"}")));
        assertThat(worker.health()).isEqualTo(WorkerHealth.down("worker 1 answered HTTP 500 to /api/show: disk full"));
    }

    @Test
    void everyCallIsARawTextCompletionWithoutThinking() {
        // Given an Ollama answering one prompt
        stubGenerate("Why is the sky blue?", " Rayleigh scattering.", 7, 4, "stop");

        // When it is completed
        worker.complete(new Batch(1, new GenerationParameters(16), List.of("Why is the sky blue?")));

        // Then the call asked for the prompt as sent (no chat template) and no thinking
        ollama.verify(postRequestedFor(urlEqualTo("/api/generate")).withRequestBody(equalToJson("""
                {"model":"llama3.2:1b","prompt":"Why is the sky blue?","raw":true,"think":false,"stream":false,
                 "options":{"num_predict":16}}""")));
    }

    @Test
    void samplingSettingsGoIntoOllamasOptionsAndOnlyThoseThatAreSet() {
        stubGenerate("p", "P", 1, 1, "stop");

        worker.complete(new Batch(1, new GenerationParameters(null, 8, 0.2, 0.5, List.of("\n\n", "END"), 42L), List.of("p")));
        worker.complete(new Batch(2, new GenerationParameters(null, 8, null, 0.5, List.of(), null), List.of("p")));

        ollama.verify(postRequestedFor(urlEqualTo("/api/generate")).withRequestBody(equalToJson("""
                {"model":"llama3.2:1b","prompt":"p","raw":true,"think":false,"stream":false,
                 "options":{"num_predict":8,"temperature":0.2,"top_p":0.5,"stop":["\\n\\n","END"],"seed":42}}""")));
        ollama.verify(postRequestedFor(urlEqualTo("/api/generate")).withRequestBody(equalToJson("""
                {"model":"llama3.2:1b","prompt":"p","raw":true,"think":false,"stream":false,
                 "options":{"num_predict":8,"top_p":0.5}}""")));
    }

    @Test
    void aBatchOfChatsIsOneApiChatCallPerConversationWithItsMessagesAndWithoutThinking() {
        // Given Ollama answering chats
        ollama.stubFor(post("/api/chat").willReturn(okJson("""
                {"model":"llama3.2:1b","created_at":"2026-11-24T08:00:00Z",
                 "message":{"role":"assistant","content":"Blue."},"done":true,"done_reason":"stop",
                 "prompt_eval_count":26,"eval_count":3}""")));
        var chat = new Prompt.Chat(List.of(new Prompt.Message("system", "Be brief."), new Prompt.Message("user", "Sky colour?")));

        // When a batch of two chats is completed
        var outcomes = worker.complete(Batch.ofChats(1, new GenerationParameters(16), List.of(chat, chat)));

        // Then each has the assistant's message and Ollama's counts
        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated("Blue.", new TokenUsage(26, 3), FinishReason.STOP),
                new WorkerOutcome.Generated("Blue.", new TokenUsage(26, 3), FinishReason.STOP));
        ollama.verify(2, postRequestedFor(urlEqualTo("/api/chat")).withRequestBody(equalToJson("""
                {"model":"llama3.2:1b","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Sky colour?"}],
                 "think":false,"stream":false,"options":{"num_predict":16}}""")));
    }

    @Test
    void aModelThatThinksAnywayAnswersWithItsResponseOnlyAndIsBilledOllamasCounts() {
        // Given a thinking model whose answer has both thinking and response
        ollama.stubFor(post("/api/generate").willReturn(okJson("""
                {"model":"llama3.2:1b","created_at":"2026-11-22T10:00:00Z","response":"42",
                 "thinking":"The user asks for the answer. It is 42.","done":true,"done_reason":"stop",
                 "prompt_eval_count":12,"eval_count":30}""")));

        // When it is completed, then the caller gets the response, billed every token Ollama counted
        assertThat(worker.complete(new Batch(1, new GenerationParameters(64), List.of("answer?"))))
                .containsExactly(new WorkerOutcome.Generated("42", new TokenUsage(12, 30), FinishReason.STOP));
    }

    @Test
    void aPromptOllamaRefusesFailsItsOwnCallerAsRejectedAndAMissingModelIsMisconfiguration() {
        // Given an Ollama that refuses one prompt (400) and has not pulled the model for another (404)
        stubGenerate("fine", "FINE", 1, 1, "stop");
        ollama.stubFor(post("/api/generate").withRequestBody(matchingJsonPath("$.prompt", equalTo("bad")))
                .willReturn(aResponse().withStatus(400).withBody("{\"error\":\"invalid options\"}")));

        // When a batch holds both
        List<WorkerOutcome> outcomes = worker.complete(new Batch(1, new GenerationParameters(16), List.of("fine", "bad")));

        // Then only the refused prompt fails, with Ollama's message
        assertThat(outcomes.getFirst()).isInstanceOf(WorkerOutcome.Generated.class);
        assertThat(outcomes.get(1)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                .isInstanceOf(WorkerException.Rejected.class).hasMessage("invalid options"));

        // Given the model is not there at all, then every call is misconfiguration, and so is the batch
        ollama.stubFor(post("/api/generate").atPriority(1).willReturn(aResponse().withStatus(404)
                .withBody("{\"error\":\"model 'llama3.2:1b' not found, try pulling it first\"}")));
        assertThatThrownBy(() -> worker.complete(new Batch(2, new GenerationParameters(16), List.of("fine", "bad"))))
                .isInstanceOf(WorkerException.Misconfigured.class)
                .hasMessageStartingWith("model llama3.2:1b is not served by worker 1: HTTP 404");
    }

    @Test
    void againstAnOllamaThatHonoursRawAndThinkTheCallerGetsTheAnswerAndIsBilledForThePromptItSent() {
        // Given an Ollama serving a thinking model, which templates prompts unless raw and thinks unless told not to
        try (var thinker = new FakeOllama("qwen3:0.6b");
                var worker = new OllamaWorker(new WorkerEndpoint(thinker.url(), Duration.ofSeconds(5), Duration.ofSeconds(20)), "qwen3:0.6b")) {
            // When a prompt of four words is completed with at most 16 tokens
            var outcomes = worker.complete(new Batch(1, new GenerationParameters(16), List.of("the sky is blue")));

            // Then the answer is in the response (no thinking spent the budget), and the prompt is billed as sent
            assertThat(outcomes).containsExactly(
                    new WorkerOutcome.Generated("THE SKY IS BLUE", new TokenUsage(4, 4), FinishReason.STOP));
            assertThat(worker.health()).isEqualTo(WorkerHealth.UP);
        }
    }

    @Test
    void aStreamedBatchHandsEachPromptsWordsToItsCallerAsTheyComeAndEndsWithTheSameOutcomes() {
        try (var ollama = new FakeOllama("qwen3:0.6b");
                var worker = new OllamaWorker(new WorkerEndpoint(ollama.url(), Duration.ofSeconds(5), Duration.ofSeconds(20)), "qwen3:0.6b")) {
            // Given a batch of three prompts whose callers stream; one breaks off mid-stream
            var progress = new RecordingProgress(3);
            var batch = new Batch(1, new GenerationParameters(16),
                    List.of("the sky is blue", "grass is green", "this one " + FakeOllama.STREAM_ERROR));

            // When it is completed
            var outcomes = worker.complete(batch, progress);

            // Then every call streamed, each prompt's words went to its own caller in order, and the outcomes are those
            // of the whole answers; the broken one fails alone, after its first word reached its caller
            assertThat(progress.texts.get(0)).containsExactly("THE", " SKY", " IS", " BLUE");
            assertThat(progress.texts.get(1)).containsExactly("GRASS", " IS", " GREEN");
            assertThat(progress.texts.get(2)).containsExactly("THIS");
            assertThat(outcomes.subList(0, 2)).containsExactly(
                    new WorkerOutcome.Generated("THE SKY IS BLUE", new TokenUsage(4, 4), FinishReason.STOP),
                    new WorkerOutcome.Generated("GRASS IS GREEN", new TokenUsage(3, 3), FinishReason.STOP));
            assertThat(outcomes.get(2)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                    .isInstanceOf(WorkerException.BadAnswer.class).hasMessageContaining("an error was encountered"));
            assertThat(progress.counts.get(0)).isEqualTo(new TokenUsage(4, 4));
            assertThat(progress.counts.get(2)).as("Ollama counts only at the end").isNull();
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"stop,STOP", "length,LENGTH", "load,UNKNOWN", "unload,UNKNOWN"})
    void doneReasonsMapAsOllamaSaysThem(String doneReason, FinishReason expected) {
        stubGenerate("p", "P", 1, 1, doneReason);
        assertThat(worker.complete(new Batch(1, new GenerationParameters(16), List.of("p"))))
                .containsExactly(new WorkerOutcome.Generated("P", new TokenUsage(1, 1), expected));
    }

    private void stubGenerate(String prompt, String response, int promptEvalCount, int evalCount, String doneReason) {
        ollama.stubFor(post("/api/generate").withRequestBody(matchingJsonPath("$.prompt", equalTo(prompt))).willReturn(okJson("""
                {"model":"llama3.2:1b","created_at":"2026-11-22T10:00:00.000000Z","response":"%s","done":true,
                 "done_reason":"%s","context":[1,2,3],"total_duration":174560334,"load_duration":101397084,
                 "prompt_eval_count":%d,"prompt_eval_duration":13074791,"eval_count":%d,"eval_duration":52479709}"""
                .formatted(response, doneReason, promptEvalCount, evalCount))));
    }

    /** Records what a worker reported while a batch generated. */
    static class RecordingProgress implements BatchProgress {
        final List<List<String>> texts = new java.util.ArrayList<>();
        final List<TokenUsage> counts = new java.util.concurrent.CopyOnWriteArrayList<>();

        RecordingProgress(int prompts) {
            for (int i = 0; i < prompts; i++) {
                texts.add(new java.util.concurrent.CopyOnWriteArrayList<>());
                counts.add(null);
            }
        }

        @Override
        public boolean text(int prompt, String delta) {
            texts.get(prompt).add(delta);
            return true;
        }

        @Override
        public void counted(int prompt, TokenUsage soFar) {
            counts.set(prompt, soFar);
        }
    }
}
