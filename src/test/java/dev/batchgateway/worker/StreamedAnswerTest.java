package dev.batchgateway.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.completion.BatchProgress;
import dev.batchgateway.completion.FinishReason;
import dev.batchgateway.completion.TokenUsage;
import dev.batchgateway.completion.WorkerException;
import dev.batchgateway.completion.WorkerOutcome;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** Reading a streamed answer line by line, as vLLM's server-sent events and Ollama's JSON lines bring it. */
class StreamedAnswerTest {

    private final NotingProgress progress = new NotingProgress();

    @Test
    void vllmChunksAreHandedOnPerPromptAndEndAsOneOutcomeEach() {
        // Given a stream for a batch of two prompts
        var answer = new StreamedAnswer(2, progress);

        // When chunks arrive for both, interleaved, with running counts, blank lines and comments between them
        assertThat(answer.sseLine("data: {\"choices\":[{\"index\":1,\"text\":\"Hel\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}")).isTrue();
        assertThat(answer.sseLine("")).isTrue();
        assertThat(answer.sseLine(": keep-alive")).isTrue();
        assertThat(answer.sseLine("data: {\"choices\":[{\"index\":0,\"text\":\"Bon\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}")).isTrue();
        assertThat(answer.sseLine("data: {\"choices\":[{\"index\":1,\"text\":\"lo\",\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}")).isTrue();
        assertThat(answer.sseLine("data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}")).isTrue();
        // the end is read on to the end of the answer, so that its connection can be used again
        assertThat(answer.sseLine("data: [DONE]")).isTrue();

        // Then each non-empty piece and each count reached the progress, in order
        assertThat(progress.noted).containsExactly(
                "1 counted 4+1", "1 text Hel", "0 counted 3+1", "0 text Bon", "1 counted 4+2", "1 text lo", "0 counted 3+1");
        // and the outcomes hold each prompt's whole text, last count and finish reason
        assertThat(answer.outcomes()).containsExactly(
                new WorkerOutcome.Generated("Bon", new TokenUsage(3, 1), FinishReason.STOP),
                new WorkerOutcome.Generated("Hello", new TokenUsage(4, 2), FinishReason.LENGTH));
    }

    @Test
    void aChatChunkCarriesItsTextAsDeltaContent() {
        var answer = new StreamedAnswer(1, progress);

        answer.sseLine("data:{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}],\"usage\":null}");
        answer.sseLine("data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}");
        answer.sseLine("data: [DONE]");

        assertThat(progress.noted).containsExactly("0 counted 2+1", "0 text Hi");
        assertThat(answer.only()).isEqualTo(new WorkerOutcome.Generated("Hi", new TokenUsage(2, 1), FinishReason.UNKNOWN));
    }

    @Test
    void readingStopsOnceNobodyWaitsForTheBatch() {
        // Given a batch whose callers have all gone
        progress.listening = false;
        var answer = new StreamedAnswer(1, progress);

        // When a piece arrives, then the stream says to stop reading
        assertThat(answer.sseLine("data: {\"choices\":[{\"index\":0,\"text\":\"x\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}"))
                .isFalse();
        assertThat(answer.jsonLine("{\"response\":\"y\",\"done\":false}")).isFalse();
        // but an empty piece asks nobody, and goes on
        assertThat(answer.sseLine("data: {\"choices\":[{\"index\":0,\"text\":\"\"}]}")).isTrue();
    }

    @Test
    void aStreamLeftBeforeItsEndGivesWhatItHadAndFailsThePromptsWithoutCounts() {
        var answer = new StreamedAnswer(2, progress);
        answer.sseLine("data: {\"choices\":[{\"index\":0,\"text\":\"part\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}");

        var outcomes = answer.outcomes();

        assertThat(outcomes.get(0)).isEqualTo(new WorkerOutcome.Generated("part", new TokenUsage(1, 1), FinishReason.UNKNOWN));
        assertThat(outcomes.get(1)).isInstanceOfSatisfying(WorkerOutcome.Failed.class, failed -> assertThat(failed.cause())
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker's stream ended before any count for this prompt"));
    }

    @Test
    void aStreamThatEndedWithoutCountsFailsThePromptNamingTheSettingToTurnOn() {
        var answer = new StreamedAnswer(1, progress);
        answer.sseLine("data: {\"choices\":[{\"index\":0,\"text\":\"all\",\"finish_reason\":\"stop\"}]}");
        answer.sseLine("data: [DONE]");

        assertThatThrownBy(answer::only).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker's stream carried no token counts for this prompt (vLLM: stream_options.continuous_usage_stats)");
    }

    @Test
    void anErrorEventFailsTheBatchWithTheWorkersMessage() {
        var answer = new StreamedAnswer(1, progress);

        assertThatThrownBy(() -> answer.sseLine("data: {\"error\":{\"message\":\"out of memory\"}}"))
                .isInstanceOf(WorkerException.BadAnswer.class).hasMessage("the worker's stream failed: out of memory");
        assertThatThrownBy(() -> answer.sseLine("data: {\"error\":{}}"))
                .isInstanceOf(WorkerException.BadAnswer.class).hasMessage("the worker's stream failed");
        assertThatThrownBy(() -> answer.jsonLine("{\"error\":\"model not loaded\"}"))
                .isInstanceOf(WorkerException.BadAnswer.class).hasMessage("the worker's stream failed: model not loaded");
        assertThatThrownBy(() -> answer.jsonLine("{\"error\":42}"))
                .isInstanceOf(WorkerException.BadAnswer.class).hasMessage("the worker's stream failed");
    }

    @Test
    void chunksThatAreNotOursFailTheBatch() {
        var answer = new StreamedAnswer(2, progress);

        assertThatThrownBy(() -> answer.sseLine("data: not json")).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker's stream holds something that is not JSON");
        assertThatThrownBy(() -> answer.sseLine("data: [1, 2]")).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker's stream holds something that is not a JSON object");
        assertThatThrownBy(() -> answer.sseLine("data: {\"id\":\"x\"}")).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("a chunk of the worker's stream has no choices");
        assertThatThrownBy(() -> answer.sseLine("data: {\"choices\":{}}")).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("a chunk of the worker's stream has no choices");
        assertThatThrownBy(() -> answer.sseLine("data: {\"choices\":[{\"index\":2,\"text\":\"x\"}]}"))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("a chunk of the worker's stream names no prompt of the batch (index 2 for 2 prompts)");
        assertThatThrownBy(() -> answer.sseLine("data: {\"choices\":[{\"index\":-1,\"text\":\"x\"}]}"))
                .isInstanceOf(WorkerException.BadAnswer.class).hasMessageContaining("(index -1 for 2 prompts)");
        assertThatThrownBy(() -> answer.sseLine("data: {\"choices\":[{\"index\":\"0\",\"text\":\"x\"}]}"))
                .isInstanceOf(WorkerException.BadAnswer.class).hasMessageContaining("names no prompt");
        assertThatThrownBy(() -> answer.sseLine("data: {\"choices\":[{\"text\":\"x\"}]}"))
                .isInstanceOf(WorkerException.BadAnswer.class).hasMessageContaining("(index null for 2 prompts)");
        assertThatThrownBy(() -> answer.sseLine("data: {\"choices\":[{\"index\":0}],\"usage\":{\"prompt_tokens\":1}}"))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("a chunk of the worker's stream has a usage without prompt_tokens and completion_tokens");
        assertThatThrownBy(() -> answer.sseLine("data: {\"choices\":[{\"index\":0}],\"usage\":{\"completion_tokens\":1}}"))
                .isInstanceOf(WorkerException.BadAnswer.class).hasMessageContaining("usage without");
        // the last prompt of the batch is ours
        assertThat(answer.sseLine("data: {\"choices\":[{\"index\":1,\"text\":\"x\"}]}")).isTrue();
        assertThat(progress.noted).containsExactly("1 text x");
    }

    @Test
    void ollamaLinesAreHandedOnAndTheLastCarriesCountsAndReason() {
        // Given a stream of Ollama's answer to one prompt
        var answer = new StreamedAnswer(1, progress);

        // When its lines arrive, the last one done
        assertThat(answer.jsonLine("{\"response\":\"Hel\",\"done\":false}")).isTrue();
        assertThat(answer.jsonLine("  ")).isTrue();
        assertThat(answer.jsonLine("{\"response\":\"\",\"done\":false}")).isTrue();
        assertThat(answer.jsonLine("{\"response\":\"lo\",\"done\":false}")).isTrue();
        assertThat(answer.jsonLine("{\"response\":\"\",\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":6,\"eval_count\":2}"))
                .as("read on to the end of the answer, so that its connection can be used again").isTrue();

        // Then the pieces and the count reached the progress, and the outcome is whole
        assertThat(progress.noted).containsExactly("0 text Hel", "0 text lo", "0 counted 6+2");
        assertThat(answer.only()).isEqualTo(new WorkerOutcome.Generated("Hello", new TokenUsage(6, 2), FinishReason.LENGTH));
    }

    @Test
    void anOllamaChatLineCarriesItsTextAsMessageContent() {
        var answer = new StreamedAnswer(1, progress);

        answer.jsonLine("{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}");
        answer.jsonLine("{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":1,\"eval_count\":1}");

        assertThat(answer.only()).isEqualTo(new WorkerOutcome.Generated("Hi", new TokenUsage(1, 1), FinishReason.STOP));
    }

    @Test
    void anOllamaLineWithoutTextOrWithAnOddOneIsNoPiece() {
        var answer = new StreamedAnswer(1, progress);
        progress.listening = false;

        assertThat(answer.jsonLine("{\"done\":false}")).isTrue();
        assertThat(answer.jsonLine("{\"response\":7,\"done\":false}")).isTrue();
        assertThat(progress.noted).isEmpty();
    }

    @Test
    void anOllamaEndWithoutCountsFailsTheBatch() {
        var answer = new StreamedAnswer(1, progress);

        assertThatThrownBy(() -> answer.jsonLine("{\"response\":\"\",\"done\":true,\"eval_count\":2}"))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker's answer has no prompt_eval_count and eval_count");
        assertThatThrownBy(() -> answer.jsonLine("{\"response\":\"\",\"done\":true,\"prompt_eval_count\":2}"))
                .isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker's answer has no prompt_eval_count and eval_count");
        assertThatThrownBy(() -> answer.jsonLine("[]")).isInstanceOf(WorkerException.BadAnswer.class)
                .hasMessage("the worker's stream holds something that is not a JSON object");
    }

    /** Notes what the stream hands on; says whether anybody still listens. */
    private static final class NotingProgress implements BatchProgress {
        final List<String> noted = new CopyOnWriteArrayList<>();
        volatile boolean listening = true;

        @Override
        public boolean text(int prompt, String delta) {
            noted.add(prompt + " text " + delta);
            return listening;
        }

        @Override
        public void counted(int prompt, TokenUsage soFar) {
            noted.add(prompt + " counted " + soFar.promptTokens() + "+" + soFar.completionTokens());
        }
    }
}
