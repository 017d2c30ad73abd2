package dev.batchgateway.web;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.batchgateway.completion.Completion;
import dev.batchgateway.completion.FinishReason;
import java.util.List;
import java.util.Map;

/**
 * OpenAI's Response object and the events of its stream, as {@code /v1/responses} answers them: every field OpenAI
 * sends, with OpenAI's nulls, so that the SDKs find the ones they require (openai-java's {@code Response} requires
 * {@code tools}, {@code tool_choice}, {@code parallel_tool_calls}, {@code metadata}…; its usage the two details
 * objects; its text parts {@code annotations}). Nothing is stored: {@code store} is always false.
 */
final class ResponsesAnswer {

    private ResponsesAnswer() {}

    /** What a Response says of the request it answers, and its ids. */
    record Asked(String id, String messageId, long createdAt, String model, String instructions, Integer maxOutputTokens,
            Double temperature, Double topP, String serviceTier) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Response(
            String id,
            String object,
            @JsonProperty("created_at") long createdAt,
            String status,
            boolean background,
            Error error,
            @JsonProperty("incomplete_details") IncompleteDetails incompleteDetails,
            String instructions,
            @JsonProperty("max_output_tokens") Integer maxOutputTokens,
            @JsonProperty("max_tool_calls") Integer maxToolCalls,
            String model,
            List<OutputMessage> output,
            @JsonProperty("parallel_tool_calls") boolean parallelToolCalls,
            @JsonProperty("previous_response_id") String previousResponseId,
            Reasoning reasoning,
            @JsonProperty("service_tier") String serviceTier,
            boolean store,
            Double temperature,
            Text text,
            @JsonProperty("tool_choice") String toolChoice,
            List<Object> tools,
            @JsonProperty("top_logprobs") int topLogprobs,
            @JsonProperty("top_p") Double topP,
            String truncation,
            Usage usage,
            String user,
            Map<String, String> metadata) {}

    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Error(String code, String message) {}

    record IncompleteDetails(String reason) {}

    /** A model served here does not reason, as OpenAI says of its own models that do not. */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record Reasoning(String effort, String summary) {}

    record Text(Format format) {}

    record Format(String type) {}

    record OutputMessage(String id, String type, String status, String role, List<OutputText> content) {}

    record OutputText(String type, String text, List<Object> annotations, List<Object> logprobs) {}

    record Usage(
            @JsonProperty("input_tokens") long inputTokens,
            @JsonProperty("input_tokens_details") InputDetails inputTokensDetails,
            @JsonProperty("output_tokens") long outputTokens,
            @JsonProperty("output_tokens_details") OutputDetails outputTokensDetails,
            @JsonProperty("total_tokens") long totalTokens) {}

    /** No prompt is cached here, so both are 0; openai-java 4.49 (Spring AI's) requires {@code cache_write_tokens}. */
    record InputDetails(@JsonProperty("cached_tokens") long cachedTokens, @JsonProperty("cache_write_tokens") long cacheWriteTokens) {}

    record OutputDetails(@JsonProperty("reasoning_tokens") long reasoningTokens) {}

    /** An event of a response's stream, named by its {@code type}. */
    sealed interface Event {
        String type();
    }

    /** {@code response.created}, {@code .in_progress}, {@code .completed}, {@code .incomplete}, {@code .failed}. */
    record ResponseEvent(String type, @JsonProperty("sequence_number") int sequenceNumber, Response response) implements Event {}

    /** {@code response.output_item.added} and {@code .done}. */
    record OutputItemEvent(String type, @JsonProperty("sequence_number") int sequenceNumber,
            @JsonProperty("output_index") int outputIndex, OutputMessage item) implements Event {}

    /** {@code response.content_part.added} and {@code .done}. */
    record ContentPartEvent(String type, @JsonProperty("sequence_number") int sequenceNumber,
            @JsonProperty("item_id") String itemId, @JsonProperty("output_index") int outputIndex,
            @JsonProperty("content_index") int contentIndex, OutputText part) implements Event {}

    record TextDeltaEvent(String type, @JsonProperty("sequence_number") int sequenceNumber,
            @JsonProperty("item_id") String itemId, @JsonProperty("output_index") int outputIndex,
            @JsonProperty("content_index") int contentIndex, String delta, List<Object> logprobs) implements Event {}

    record TextDoneEvent(String type, @JsonProperty("sequence_number") int sequenceNumber,
            @JsonProperty("item_id") String itemId, @JsonProperty("output_index") int outputIndex,
            @JsonProperty("content_index") int contentIndex, String text, List<Object> logprobs) implements Event {}

    /**
     * The {@code error} event: its fields at the top, as OpenAI's reference and the SDKs' models have them, and in an
     * {@code error} object, as OpenAI sends them (which makes openai-java and openai-node raise their error).
     */
    @JsonInclude(JsonInclude.Include.ALWAYS)
    record ErrorEvent(String type, @JsonProperty("sequence_number") int sequenceNumber, String code, String message,
            String param, Map<String, Object> error) implements Event {}

    /** A response on its way: no output and no usage yet. */
    static Response inProgress(Asked asked) {
        return response(asked, "in_progress", null, null, List.of(), null);
    }

    /** A response answered: {@code completed}, or {@code incomplete} when the text reached {@code max_output_tokens}. */
    static Response answered(Asked asked, Completion answer, String text) {
        boolean cut = answer.finishReason() == FinishReason.LENGTH;
        String status = cut ? "incomplete" : "completed";
        return response(asked, status, null, cut ? new IncompleteDetails("max_output_tokens") : null,
                List.of(message(asked, status, text)), usage(answer));
    }

    /** A response that failed after its stream began. */
    static Response failed(Asked asked, String code, String message) {
        return response(asked, "failed", new Error(code, message), null, List.of(), null);
    }

    static OutputMessage message(Asked asked, String status, String text) {
        return new OutputMessage(asked.messageId(), "message", status, "assistant",
                text == null ? List.of() : List.of(text(text)));
    }

    static OutputText text(String text) {
        return new OutputText("output_text", text, List.of(), List.of());
    }

    private static Usage usage(Completion answer) {
        return new Usage(answer.usage().promptTokens(), new InputDetails(0, 0), answer.usage().completionTokens(),
                new OutputDetails(0), answer.usage().totalTokens());
    }

    private static Response response(Asked asked, String status, Error error, IncompleteDetails incomplete,
            List<OutputMessage> output, Usage usage) {
        return new Response(asked.id(), "response", asked.createdAt(), status, false, error, incomplete,
                asked.instructions(), asked.maxOutputTokens(), null, asked.model(), output, false, null,
                new Reasoning(null, null), asked.serviceTier(), false, asked.temperature(), new Text(new Format("text")),
                "none", List.of(), 0, asked.topP(), "disabled", usage, null, Map.of());
    }
}
