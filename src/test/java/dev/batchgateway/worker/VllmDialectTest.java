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

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.core.WireMockConfiguration;
import dev.batchgateway.completion.Batch;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.GenerationParameters;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The vLLM dialect against replayed vLLM answers, with and without per-choice token ids. */
class VllmDialectTest {

    private final WireMockServer vllm = new WireMockServer(WireMockConfiguration.options().dynamicPort());
    private OpenAiWorker worker;

    @BeforeEach
    void start() {
        vllm.start();
        worker = new OpenAiWorker(new WorkerEndpoint(vllm.baseUrl(), Duration.ofSeconds(5), Duration.ofSeconds(20)), "Qwen/Qwen2.5-1.5B-Instruct");
    }

    @AfterEach
    void stop() {
        worker.close();
        vllm.stop();
    }

    static Batch batch(String... prompts) {
        return new Batch(1, new GenerationParameters(16), List.of(prompts));
    }

    @Test
    void aBatchIsOneCallAndEachPromptGetsTheLengthsOfItsOwnTokenIdsMatchedByIndex() {
        // Given vLLM >= 0.10.2 answering three prompts with token ids, its choices out of prompt order
        vllm.stubFor(post("/v1/completions").willReturn(okJson("""
                {"id":"cmpl-9f1c","object":"text_completion","created":1763800000,"model":"Qwen/Qwen2.5-1.5B-Instruct",
                 "choices":[
                  {"index":2,"text":" blue.","logprobs":null,"finish_reason":"stop","stop_reason":null,
                   "prompt_token_ids":[785,12884,374],"token_ids":[6303,13,151643]},
                  {"index":0,"text":" Paris, the capital","logprobs":null,"finish_reason":"length","stop_reason":null,
                   "prompt_token_ids":[785,6722,315,9625,374],"token_ids":[12095,11,279,6722,315,9625,374,12095,11,279,6722,315,9625,374,12095,11]},
                  {"index":1,"text":" 4","logprobs":null,"finish_reason":"stop","stop_reason":null,
                   "prompt_token_ids":[17,10,17,28],"token_ids":[220,19]}],
                 "usage":{"prompt_tokens":12,"total_tokens":33,"completion_tokens":21,"prompt_tokens_details":null}}
                """)));

        // When the adapter completes the batch
        List<WorkerOutcome> outcomes = worker.complete(batch("The capital of France is", "2+2=", "The sky is"));

        // Then each prompt has its own text and counts, in prompt order
        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated(" Paris, the capital", new TokenUsage(5, 16), FinishReason.LENGTH),
                new WorkerOutcome.Generated(" 4", new TokenUsage(4, 2), FinishReason.STOP),
                new WorkerOutcome.Generated(" blue.", new TokenUsage(3, 3), FinishReason.STOP));

        // And the worker got one call with every prompt, asking for token ids
        vllm.verify(1, postRequestedFor(urlEqualTo("/v1/completions")).withRequestBody(equalToJson("""
                {"model":"Qwen/Qwen2.5-1.5B-Instruct","prompt":["The capital of France is","2+2=","The sky is"],
                 "max_tokens":16,"return_token_ids":true}""")));
    }

    @Test
    void anAnswerWithoutTokenIdsHasOnlyItsOwnBatchSentAgainOnePromptPerCallAndTheNextBatchIsTriedAsAListAgain() {
        // Given a server that claims nothing and answers a list without token ids, usage aggregated over the batch
        vllm.stubFor(post("/v1/completions").atPriority(1)
                .withRequestBody(matchingJsonPath("$.return_token_ids"))
                .willReturn(okJson("""
                        {"id":"cmpl-1","object":"text_completion","created":1763800000,"model":"m",
                         "choices":[{"index":0,"text":" x","logprobs":null,"finish_reason":"stop"},
                                    {"index":1,"text":" y","logprobs":null,"finish_reason":"stop"}],
                         "usage":{"prompt_tokens":9,"total_tokens":12,"completion_tokens":3}}""")));
        // and its answers to single prompts, each with its own usage
        stubSinglePrompt("first prompt", " one", 2, 1, "stop");
        stubSinglePrompt("the second prompt", " two three four", 3, 16, "length");
        stubSinglePrompt("third", " five", 1, 1, "stop");

        // When two batches are completed
        List<WorkerOutcome> first = worker.complete(batch("first prompt", "the second prompt"));
        List<WorkerOutcome> second = worker.complete(batch("third", "first prompt"));

        // Then each prompt has its own answer and counts
        assertThat(first).containsExactly(
                new WorkerOutcome.Generated(" one", new TokenUsage(2, 1), FinishReason.STOP),
                new WorkerOutcome.Generated(" two three four", new TokenUsage(3, 16), FinishReason.LENGTH));
        assertThat(second).containsExactly(
                new WorkerOutcome.Generated(" five", new TokenUsage(1, 1), FinishReason.STOP),
                new WorkerOutcome.Generated(" one", new TokenUsage(2, 1), FinishReason.STOP));

        // And one answer changed nothing for good: both batches were tried as a list, then sent one prompt per call,
        // without asking for token ids
        vllm.verify(2, postRequestedFor(urlEqualTo("/v1/completions")).withRequestBody(matchingJsonPath("$.return_token_ids")));
        vllm.verify(6, postRequestedFor(urlEqualTo("/v1/completions")));
        vllm.verify(postRequestedFor(urlEqualTo("/v1/completions")).withRequestBody(equalToJson("""
                {"model":"Qwen/Qwen2.5-1.5B-Instruct","prompt":"third","max_tokens":16}""")));
        assertThat(worker.dialect()).isEqualTo(Dialect.VLLM);
    }

    @Test
    void aVllmOlderThan0102KnownByItsVersionGetsOneCallPerPromptFromItsFirstHealthCheck() {
        // Given vLLM 0.10.1, which returns no token ids, serving the model
        vllm.stubFor(get("/version").willReturn(okJson("{\"version\":\"0.10.1\"}")));
        vllm.stubFor(get("/health").willReturn(aResponse().withStatus(200)));
        vllm.stubFor(get("/v1/models").willReturn(okJson("""
                {"object":"list","data":[{"id":"Qwen/Qwen2.5-1.5B-Instruct","object":"model","owned_by":"vllm"}]}""")));
        stubSinglePrompt("first prompt", " one", 2, 1, "stop");
        stubSinglePrompt("third", " five", 1, 1, "stop");

        // When its health is checked, then it is up and known for what it is
        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);
        assertThat(worker.dialect()).isEqualTo(Dialect.VLLM_WITHOUT_TOKEN_IDS);

        // And a batch is one call per prompt from the start, each billed its own usage
        assertThat(worker.complete(batch("first prompt", "third"))).containsExactly(
                new WorkerOutcome.Generated(" one", new TokenUsage(2, 1), FinishReason.STOP),
                new WorkerOutcome.Generated(" five", new TokenUsage(1, 1), FinishReason.STOP));
        vllm.verify(2, postRequestedFor(urlEqualTo("/v1/completions")));
        vllm.verify(0, postRequestedFor(urlEqualTo("/v1/completions")).withRequestBody(matchingJsonPath("$.return_token_ids")));
    }

    @Test
    void aBatchOfOneWithoutTokenIdsTakesTheAnswersUsage() {
        // Given a server without token ids answering one prompt
        vllm.stubFor(post("/v1/completions").willReturn(okJson("""
                {"id":"cmpl-1","object":"text_completion","created":1,"model":"m",
                 "choices":[{"index":0,"text":" hi","finish_reason":"length"}],
                 "usage":{"prompt_tokens":7,"total_tokens":23,"completion_tokens":16}}""")));

        // When a batch of one is completed, then the usage is that prompt's, in one call
        assertThat(worker.complete(batch("hello"))).containsExactly(
                new WorkerOutcome.Generated(" hi", new TokenUsage(7, 16), FinishReason.LENGTH));
        vllm.verify(1, postRequestedFor(urlEqualTo("/v1/completions")));
    }

    @Test
    void healthIsTheEngineAnsweringAndServingTheConfiguredModel() {
        // Given a running engine that serves the model, then up
        vllm.stubFor(get("/health").willReturn(aResponse().withStatus(200)));
        vllm.stubFor(get("/v1/models").willReturn(okJson("""
                {"object":"list","data":[{"id":"Qwen/Qwen2.5-1.5B-Instruct","object":"model","owned_by":"vllm"}]}""")));
        assertThat(worker.health()).isEqualTo(WorkerHealth.UP);

        // Given one that serves another model, then down, naming the model, the server and what it serves
        vllm.stubFor(get("/v1/models").willReturn(okJson("""
                {"object":"list","data":[{"id":"meta-llama/Llama-3.2-1B","object":"model","owned_by":"vllm"}]}""")));
        assertThat(worker.health().up()).isFalse();
        assertThat(worker.health().reason()).isEqualTo("model Qwen/Qwen2.5-1.5B-Instruct is not served by worker 1"
                + ": 404, it serves meta-llama/Llama-3.2-1B");

        // Given a dead engine, then down with its status
        vllm.stubFor(get("/health").willReturn(aResponse().withStatus(503)));
        assertThat(worker.health()).isEqualTo(WorkerHealth.down("worker 1 answered HTTP 503 to /health"));

        // Given no server at all, then down: no answer
        vllm.stop();
        assertThat(worker.health().up()).isFalse();
        assertThat(worker.health().reason()).isEqualTo("no answer to /health: could not connect to worker 1");
    }

    private void stubSinglePrompt(String prompt, String text, int promptTokens, int completionTokens, String finish) {
        vllm.stubFor(post("/v1/completions").atPriority(5)
                .withRequestBody(matchingJsonPath("$.prompt", equalTo(prompt)))
                .willReturn(okJson("""
                        {"id":"cmpl-2","object":"text_completion","created":1,"model":"m",
                         "choices":[{"index":0,"text":"%s","logprobs":null,"finish_reason":"%s"}],
                         "usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}}"""
                        .formatted(text, finish, promptTokens, promptTokens + completionTokens, completionTokens))));
    }
}
