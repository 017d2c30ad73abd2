package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.Function;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * A chat's {@link TokenBound} stays an upper bound of its tokens when its template is {@linkplain ChatTemplate#measured
 * measured} on the probes: for templates rendered as text (what llama.cpp's {@code /apply-template} answers), whose
 * UTF-8 bytes and a BOS bound their tokens, the bound of any conversation is at least that. The templates are the
 * shapes that matter: ChatML as llama.cpp's fallback spells it (the one recorded in shared/realworker), Llama 3.1's
 * (a system block with dates always, the caller's system text inside it) and Qwen 2.5's (a default system prompt only
 * when the caller gives none).
 */
class ChatTemplateBoundPropertyTest {

    static String chatMl(List<Prompt.Message> messages) {
        StringBuilder text = new StringBuilder();
        for (Prompt.Message message : messages) {
            text.append("<|im_start|>").append(message.role()).append('\n').append(message.content()).append("<|im_end|>\n");
        }
        return text.append("<|im_start|>assistant\n").toString();
    }

    static String llama31(List<Prompt.Message> messages) {
        StringBuilder text = new StringBuilder("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
        List<Prompt.Message> rest = messages;
        if (messages.getFirst().role().equals("system")) {
            text.append(messages.getFirst().content().strip());
            rest = messages.subList(1, messages.size());
        }
        text.append("<|eot_id|>");
        for (Prompt.Message message : rest) {
            text.append("<|start_header_id|>").append(message.role()).append("<|end_header_id|>\n\n")
                    .append(message.content().strip()).append("<|eot_id|>");
        }
        return text.append("<|start_header_id|>assistant<|end_header_id|>\n\n").toString();
    }

    static String qwen25(List<Prompt.Message> messages) {
        String defaultSystem = messages.getFirst().role().equals("system") ? ""
                : "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";
        return defaultSystem + chatMl(messages);
    }

    /** The tokens a text template may make: a token per UTF-8 byte at most, and a BOS. */
    static int tokens(String rendered) {
        return rendered.getBytes(StandardCharsets.UTF_8).length + 1;
    }

    static ChatTemplate measured(Function<List<Prompt.Message>, String> template) {
        int[] counts = ChatTemplate.PROBES.stream().mapToInt(probe -> tokens(template.apply(probe))).toArray();
        return ChatTemplate.measured(counts).orElseThrow();
    }

    @Property(tries = 300)
    void theBoundOfAConversationWithItsMeasuredTemplateCoversTheTemplatedText(
            @ForAll("conversations") List<Prompt.Message> messages) {
        for (Function<List<Prompt.Message>, String> template : List.<Function<List<Prompt.Message>, String>>of(
                ChatTemplateBoundPropertyTest::chatMl, ChatTemplateBoundPropertyTest::llama31, ChatTemplateBoundPropertyTest::qwen25)) {
            var chat = new Prompt.Chat(messages, measured(template));
            assertThat(TokenBound.prompt(chat)).as(template.apply(messages)).isGreaterThanOrEqualTo(tokens(template.apply(messages)));
        }
    }

    @Example
    void chatMlAsLlamaCppSpellsItMeasuresFarBelowTheOldFlatAllowance() {
        // "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n" and a BOS: 52; a system message adds 31, two more 63
        assertThat(measured(ChatTemplateBoundPropertyTest::chatMl)).isEqualTo(new ChatTemplate(20, 32));
        // the recorded llama.cpp exchange billed "Tell me a story." 50 prompt tokens: its bound is 20 + (4 + 16 + 32) = 72
        var recorded = new Prompt.Chat(List.of(new Prompt.Message("user", "Tell me a story.")),
                measured(ChatTemplateBoundPropertyTest::chatMl));
        assertThat(TokenBound.prompt(recorded)).isEqualTo(72).isGreaterThanOrEqualTo(50);
    }

    @Example
    void aTemplateThatRefusesASystemMessageIsMeasuredFromTheOtherProbes() {
        assertThat(ChatTemplate.measured(new int[] {10, -1, 30})).contains(new ChatTemplate(0, 10));
        assertThat(ChatTemplate.measured(new int[] {-1, 12, 30})).isEmpty();
    }

    @Provide
    Arbitrary<List<Prompt.Message>> conversations() {
        Arbitrary<String> text = Arbitraries.oneOf(
                Arbitraries.strings().withCharRange((char) 0, (char) 0xD7FF).ofMaxLength(40), // readers refuse lone surrogates
                // whole characters, not chars: "😀" is two, and one of them alone is a lone surrogate
                Arbitraries.of("a", "é", "中", "😀", " ", "\n", "\t").list().ofMaxSize(20).map(parts -> String.join("", parts)),
                Arbitraries.just(""), Arbitraries.just("   "));
        Arbitrary<Prompt.Message> message = Combinators.combine(Arbitraries.of("system", "user", "assistant"), text)
                .as(Prompt.Message::new);
        return message.list().ofMinSize(1).ofMaxSize(6);
    }
}
