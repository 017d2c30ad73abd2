package dev.batchgateway.worker;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.containing;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.matchingJsonPath;
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
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The llama.cpp dialect against llama-server's answers as recorded byte for byte (shared/realworker/
 * llama-server-exchanges.md: llama.cpp of 2025-10-28 serving stories260K.gguf), configured as vLLM as it was then: a
 * list answered with a JSON array of complete answers, each billed its own usage; a lone prompt answered with one
 * object; a list with one prompt over the context refused with 400 as a whole.
 */
class LlamaCppDialectTest {

    private static final String MODEL = "models/stories260K.gguf";
    private static final String DOG = "Once upon a time, Lily saw a little dog number ";

    private final WireMockServer llama = new WireMockServer(WireMockConfiguration.options().dynamicPort());
    private OpenAiWorker worker;

    @BeforeEach
    void start() {
        llama.start();
        worker = new OpenAiWorker(new WorkerEndpoint(llama.baseUrl(), Duration.ofSeconds(5), Duration.ofSeconds(20)), MODEL, Dialect.VLLM);
    }

    @AfterEach
    void stop() {
        worker.close();
        llama.stop();
    }

    private static Batch batch(String... prompts) {
        return new Batch(1, new GenerationParameters(16), List.of(prompts));
    }

    @Test
    void aListIsOneCallAnsweredWithAnArrayAndEachPromptIsBilledItsOwnAnswersUsage() {
        // Given llama-server's recorded answer to three prompts (timings cut), each answer with its own usage
        llama.stubFor(post("/v1/completions").willReturn(aResponse().withStatus(200)
                .withHeader("Content-Type", "application/json; charset=utf-8").withHeader("Server", "llama.cpp")
                .withBody("""
                        [{"choices":[{"text":" It was a big, duck named Cat. Lily had","index":0,"logprobs":null,"finish_reason":"length"}],"created":1796458519,"model":"models/stories260K.gguf","system_fingerprint":"b0-unknown","object":"text_completion","usage":{"completion_tokens":16,"prompt_tokens":20,"total_tokens":36},"id":"chatcmpl-MfknNYAZD9jvfHEgJKOl0Qe1Rl81EMn9","timings":{"cache_n":0,"prompt_n":20}},{"choices":[{"text":" Lily was a small rock that she decided","index":1,"logprobs":null,"finish_reason":"length"}],"created":1796458519,"model":"models/stories260K.gguf","system_fingerprint":"b0-unknown","object":"text_completion","usage":{"completion_tokens":16,"prompt_tokens":20,"total_tokens":36},"id":"chatcmpl-MfknNYAZD9jvfHEgJKOl0Qe1Rl81EMn9","timings":{"cache_n":0,"prompt_n":20}},{"choices":[{"text":" The dog was very tired and wanted to help.","index":2,"logprobs":null,"finish_reason":"length"}],"created":1796458519,"model":"models/stories260K.gguf","system_fingerprint":"b0-unknown","object":"text_completion","usage":{"completion_tokens":16,"prompt_tokens":20,"total_tokens":36},"id":"chatcmpl-MfknNYAZD9jvfHEgJKOl0Qe1Rl81EMn9","timings":{"cache_n":0,"prompt_n":20}}]""")));

        // When the batch of the recorded three prompts is completed
        List<WorkerOutcome> outcomes = worker.complete(batch(DOG + "3.", DOG + "8.", DOG + "1."));

        // Then each prompt has its own answer and its answer's usage, from the one call
        assertThat(outcomes).containsExactly(
                new WorkerOutcome.Generated(" It was a big, duck named Cat. Lily had", new TokenUsage(20, 16), FinishReason.LENGTH),
                new WorkerOutcome.Generated(" Lily was a small rock that she decided", new TokenUsage(20, 16), FinishReason.LENGTH),
                new WorkerOutcome.Generated(" The dog was very tired and wanted to help.", new TokenUsage(20, 16), FinishReason.LENGTH));
        llama.verify(1, postRequestedFor(urlEqualTo("/v1/completions")));
    }

    @Test
    void aLonePromptIsAnsweredWithOneObjectBilledItsUsageAndTheNextListIsStillOneCall() {
        // Given the recorded answer to one prompt, and an answer to a list of two
        llama.stubFor(post("/v1/completions").withRequestBody(matchingJsonPath("$.prompt.length()", equalTo("1")))
                .willReturn(aResponse().withStatus(200).withHeader("Content-Type", "application/json; charset=utf-8").withBody("""
                        {"choices":[{"text":" It was a crab, Lily wanted to play with it","index":0,"logprobs":null,"finish_reason":"length"}],"created":1796458519,"model":"models/stories260K.gguf","system_fingerprint":"b0-unknown","object":"text_completion","usage":{"completion_tokens":16,"prompt_tokens":20,"total_tokens":36},"id":"chatcmpl-DYFNqd6knwIrMH0McIKbXTonwZLVMsft","timings":{"cache_n":0,"prompt_n":20}}""")));
        llama.stubFor(post("/v1/completions").withRequestBody(matchingJsonPath("$.prompt.length()", equalTo("2")))
                .willReturn(aResponse().withStatus(200).withHeader("Content-Type", "application/json; charset=utf-8").withBody("""
                        [{"choices":[{"text":" a","index":1,"logprobs":null,"finish_reason":"stop"}],"object":"text_completion","usage":{"completion_tokens":2,"prompt_tokens":21,"total_tokens":23}},
                         {"choices":[{"text":" b","index":0,"logprobs":null,"finish_reason":"length"}],"object":"text_completion","usage":{"completion_tokens":16,"prompt_tokens":20,"total_tokens":36}}]""")));

        // When a lone prompt, then a batch of two, are completed
        assertThat(worker.complete(batch(DOG + "4."))).containsExactly(
                new WorkerOutcome.Generated(" It was a crab, Lily wanted to play with it", new TokenUsage(20, 16), FinishReason.LENGTH));
        assertThat(worker.complete(batch(DOG + "5.", DOG + "10."))).containsExactly(
                new WorkerOutcome.Generated(" b", new TokenUsage(20, 16), FinishReason.LENGTH),
                new WorkerOutcome.Generated(" a", new TokenUsage(21, 2), FinishReason.STOP));

        // Then there were two calls, the lone answer changing nothing
        llama.verify(2, postRequestedFor(urlEqualTo("/v1/completions")));
    }

    @Test
    void aListWithOnePromptOverTheContextIsSentAgainOnePerCallAndOnlyThatPromptIsRefused() {
        // Given the recorded refusal of a whole list for one prompt, and single prompts answered
        String refusal = """
                {"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":1381,"n_ctx":512}}""";
        llama.stubFor(post("/v1/completions").atPriority(1)
                .withRequestBody(containing("little bird"))
                .willReturn(aResponse().withStatus(400).withHeader("Content-Type", "application/json; charset=utf-8").withBody(refusal)));
        llama.stubFor(post("/v1/completions").atPriority(5).willReturn(aResponse().withStatus(200).withBody("""
                {"choices":[{"text":" fine","index":0,"logprobs":null,"finish_reason":"stop"}],"object":"text_completion","usage":{"completion_tokens":2,"prompt_tokens":20,"total_tokens":22}}""")));

        // When a batch of eight, the last one far over the context, is completed
        String bird = "the little bird sang a happy song in the big green tree. ".repeat(60);
        List<WorkerOutcome> outcomes = worker.complete(batch(DOG + "1.", DOG + "5.", DOG + "6.", DOG + "3.", DOG + "4.",
                DOG + "7.", DOG + "2.", bird));

        // Then seven are answered and billed, and the eighth alone is refused with llama-server's words
        assertThat(outcomes.subList(0, 7)).allSatisfy(outcome ->
                assertThat(outcome).isEqualTo(new WorkerOutcome.Generated(" fine", new TokenUsage(20, 2), FinishReason.STOP)));
        assertThat(outcomes.get(7)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                .isInstanceOf(WorkerException.Rejected.class)
                .hasMessage("the request exceeds the available context size, try increasing it"));
        llama.verify(1 + 8, postRequestedFor(urlEqualTo("/v1/completions")));
    }
}
