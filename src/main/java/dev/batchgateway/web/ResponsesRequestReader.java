package dev.batchgateway.web;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.JsonNodeFactory;
import tools.jackson.databind.node.ObjectNode;

/**
 * Reads an OpenAI {@code POST /v1/responses} body, the stateless subset, as the chat it is: {@code instructions} become
 * the first (system) message, {@code input} (a string, or messages whose content is a string or text parts) the
 * messages after it, {@code max_output_tokens} the chat's {@code max_completion_tokens}; the chat is then read by
 * {@code /v1/chat/completions}'s own reader, so that both endpoints take the same models, limits, tiers and defaults.
 * Its refusals name the Responses API's fields ({@code input[1].content}, {@code max_output_tokens}).
 *
 * <p>Strict as the chat reader is: a field the gateway does not know is refused naming it in {@code param}, and so is
 * every stateful feature ({@code previous_response_id}, {@code conversation}, {@code store: true}, {@code background},
 * {@code tools}), unless it carries the value that changes nothing.
 */
final class ResponsesRequestReader {

    private static final Set<String> HONOURED = Set.of(
            "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "service_tier", "stream", "user");
    /** Fields the gateway does not honour, accepted only with the value that changes nothing (null is always fine). */
    private static final Map<String, Predicate<JsonNode>> DEFAULTS = Map.of(
            "store", ResponsesRequestReader::isFalse,
            "background", ResponsesRequestReader::isFalse,
            "tools", value -> value.isArray() && value.isEmpty(),
            "tool_choice", value -> value.isString() && Set.of("none", "auto").contains(value.stringValue()),
            "parallel_tool_calls", JsonNode::isBoolean, // without tools there are no calls to run in parallel
            "include", value -> value.isArray() && value.isEmpty(),
            "metadata", value -> value.isObject() && value.isEmpty(),
            "truncation", value -> value.isString() && "disabled".equals(value.stringValue()),
            "text", ResponsesRequestReader::isPlainText,
            "top_logprobs", value -> value.isIntegralNumber() && value.asLong() == 0);
    /** Why a stateful feature is refused: the gateway keeps nothing between calls. */
    private static final Map<String, String> STATEFUL = Map.of(
            "previous_response_id", "this gateway keeps no responses: send the whole conversation in input",
            "conversation", "this gateway keeps no conversations: send the whole conversation in input",
            "store", "this gateway stores no responses: leave store out or send false",
            "background", "background responses are stored responses, which this gateway does not keep",
            "tools", "tools are not supported by this gateway",
            "tool_choice", "tools are not supported by this gateway: leave tool_choice out or send \"none\"");
    private static final Set<String> ROLES = Set.of("user", "system", "developer", "assistant");
    /** What a message item may carry besides its role and content: what the SDKs send back of an earlier answer. */
    private static final Set<String> MESSAGE_FIELDS = Set.of("role", "content", "type", "id", "status");
    private static final Set<String> TEXT_PARTS = Set.of("input_text", "output_text");
    /** What a text part may carry besides its type and text: an earlier answer's, sent back as it came. */
    private static final Set<String> PART_FIELDS = Set.of("type", "text", "annotations", "logprobs");
    private static final Pattern CHAT_MESSAGE = Pattern.compile("messages\\[(\\d+)]");

    private final Function<JsonNode, OpenAiRequestReader.Completions> chat;

    /** @param chat reads a {@code /v1/chat/completions} body, as that endpoint does for the caller */
    ResponsesRequestReader(Function<JsonNode, OpenAiRequestReader.Completions> chat) {
        this.chat = chat;
    }

    /**
     * A response asked for: the chat that answers it, and what the answer echoes of the request.
     *
     * @param instructions as given, or null
     * @param maxOutputTokens as given, or null (the chat's default then applies)
     */
    record Request(OpenAiRequestReader.Completions chat, String instructions, Integer maxOutputTokens) {}

    Request read(JsonNode body) {
        requireKnownFields(body);
        String instructions = instructions(body.get("instructions"));
        JsonNode input = body.get("input");
        ObjectNode asChat = JsonNodeFactory.instance.objectNode();
        for (String field : List.of("model", "temperature", "top_p", "service_tier", "stream", "user")) {
            if (body.has(field)) {
                asChat.set(field, body.get(field));
            }
        }
        if (body.has("max_output_tokens")) {
            asChat.set("max_completion_tokens", body.get("max_output_tokens"));
        }
        ArrayNode messages = asChat.putArray("messages");
        if (instructions != null) {
            messages.addObject().put("role", "system").put("content", instructions);
        }
        messages.addAll(messages(input));
        try {
            var read = chat.apply(asChat);
            JsonNode maxOutputTokens = body.get("max_output_tokens");
            return new Request(read, instructions,
                    maxOutputTokens == null || maxOutputTokens.isNull() ? null : read.parameters().maxTokens());
        } catch (OpenAiError refused) {
            throw inResponsesWords(refused, instructions != null, input != null && input.isString());
        }
    }

    /** As the chat reader judges fields, and a stateful feature refused saying why. */
    private static void requireKnownFields(JsonNode body) {
        if (body != null && body.isObject()) {
            for (var field : body.properties()) {
                String why = STATEFUL.get(field.getKey());
                Predicate<JsonNode> isDefault = DEFAULTS.getOrDefault(field.getKey(), value -> false);
                if (why != null && !field.getValue().isNull() && !isDefault.test(field.getValue())) {
                    throw OpenAiError.invalid(field.getKey(), field.getKey() + " is not supported: " + why);
                }
            }
        }
        OpenAiRequestReader.requireKnownFields(body, HONOURED, DEFAULTS);
    }

    private static String instructions(JsonNode instructions) {
        if (instructions == null || instructions.isNull()) {
            return null;
        }
        if (!instructions.isString()) {
            throw OpenAiError.invalid("instructions", "instructions must be a string");
        }
        return instructions.stringValue();
    }

    /** The input as chat messages: a string is one user message; an array holds messages of text. */
    private static ArrayNode messages(JsonNode input) {
        ArrayNode messages = JsonNodeFactory.instance.arrayNode();
        if (input == null || input.isNull()) {
            throw OpenAiError.invalid("input", "input is required: a string or an array of messages");
        }
        if (input.isString()) {
            messages.addObject().put("role", "user").put("content", input.stringValue());
            return messages;
        }
        if (!input.isArray() || input.isEmpty()) {
            throw OpenAiError.invalid("input", "input must be a string or a non-empty array of messages");
        }
        for (int i = 0; i < input.size(); i++) {
            messages.add(message(input.get(i), "input[" + i + "]"));
        }
        return messages;
    }

    private static ObjectNode message(JsonNode item, String field) {
        if (!item.isObject()) {
            throw OpenAiError.invalid(field, field + " must be a message: an object with role and content");
        }
        String type = item.path("type").asString("message");
        if (!"message".equals(type)) {
            throw OpenAiError.invalid(field, "item_reference".equals(type)
                    ? field + " refers to an earlier item, but this gateway keeps none: send the earlier answer as a message"
                            + " (@ai-sdk/openai does with providerOptions: {openai: {store: false}})"
                    : field + " is an item of type " + type + ", which this gateway does not take: input holds messages of text only");
        }
        for (var part : item.properties()) {
            if (!MESSAGE_FIELDS.contains(part.getKey()) && !part.getValue().isNull()) {
                throw OpenAiError.invalid(field + "." + part.getKey(), field + "." + part.getKey() + " is not supported by this gateway");
            }
        }
        JsonNode role = item.get("role");
        if (role == null || !role.isString() || !ROLES.contains(role.stringValue())) {
            throw OpenAiError.invalid(field + ".role", field + ".role must be user, system, developer or assistant");
        }
        return JsonNodeFactory.instance.objectNode()
                .put("role", role.stringValue())
                .put("content", content(item.get("content"), field + ".content"));
    }

    /** A message's content: a string, or text parts ({@code input_text}, an earlier answer's {@code output_text}) joined. */
    private static String content(JsonNode content, String field) {
        if (content != null && content.isString()) {
            return content.stringValue();
        }
        if (content == null || !content.isArray()) {
            throw OpenAiError.invalid(field, field + " must be a string or an array of text parts");
        }
        StringBuilder joined = new StringBuilder();
        for (int j = 0; j < content.size(); j++) {
            String partField = field + "[" + j + "]";
            JsonNode part = content.get(j);
            if (!part.isObject() || !TEXT_PARTS.contains(part.path("type").asString(null)) || !part.path("text").isString()) {
                throw OpenAiError.invalid(partField, partField + " must be {\"type\": \"input_text\", \"text\": …}:"
                        + " only text is supported (no images, files or audio)");
            }
            for (var member : part.properties()) {
                if (!PART_FIELDS.contains(member.getKey())) {
                    throw OpenAiError.invalid(partField + "." + member.getKey(),
                            partField + "." + member.getKey() + " is not supported by this gateway");
                }
            }
            joined.append(part.get("text").stringValue());
        }
        return joined.toString();
    }

    /**
     * The chat reader's refusal in the words of the Responses API: {@code max_completion_tokens} is {@code
     * max_output_tokens}, and a message is {@code instructions}, the string {@code input} or an item of it.
     */
    static OpenAiError inResponsesWords(OpenAiError refused, boolean hasInstructions, boolean inputIsString) {
        String param = refused.param;
        if (param == null) {
            return refused;
        }
        String renamed;
        if (param.equals("max_completion_tokens")) {
            renamed = "max_output_tokens";
        } else if (param.equals("messages")) {
            renamed = "input";
        } else {
            Matcher message = CHAT_MESSAGE.matcher(param);
            if (!message.lookingAt()) {
                return refused;
            }
            int item = Integer.parseInt(message.group(1)) - (hasInstructions ? 1 : 0);
            String rest = param.substring(message.end());
            renamed = item < 0 ? "instructions" : inputIsString ? "input" : "input[" + item + "]" + rest;
        }
        String said = refused.getMessage() == null ? null : refused.getMessage()
                .replace("the messages hold", "the input holds")
                .replace("the messages are", "the input is")
                .replace(param, renamed);
        return new OpenAiError(refused.status, said, refused.type, renamed, refused.code);
    }

    private static boolean isFalse(JsonNode value) {
        return value.isBoolean() && !value.booleanValue();
    }

    /** {@code text: {"format": {"type": "text"}}}, OpenAI's default, as some clients send it. */
    private static boolean isPlainText(JsonNode value) {
        if (!value.isObject() || value.size() != 1 || !value.has("format")) {
            return false;
        }
        JsonNode format = value.get("format");
        return format.isObject() && format.size() == 1 && "text".equals(format.path("type").asString(null));
    }
}
