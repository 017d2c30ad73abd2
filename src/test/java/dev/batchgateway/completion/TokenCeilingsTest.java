package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

class TokenCeilingsTest {

    private static final String MODEL = "m";
    private static final ChatTemplate TEMPLATE = new ChatTemplate(10, 4);

    private static TokenCeilings ceilings(OptionalInt cap, ModelContext context) {
        return new TokenCeilings(cap, model -> context);
    }

    private static ModelContext reported(int tokens, boolean refuses) {
        return ModelContext.of(tokens, refuses, TEMPLATE);
    }

    @Test
    void theCeilingIsTheModelsReportedContextWithoutACap() {
        var ceilings = ceilings(OptionalInt.empty(), reported(8192, true));

        // common client settings are accepted where the context allows
        assertThat(ceilings.asked(MODEL, 1024)).isEqualTo(1024);
        assertThat(ceilings.asked(MODEL, 4096)).isEqualTo(4096);
        assertThat(ceilings.asked(MODEL, 8192)).isEqualTo(8192);
        assertThatThrownBy(() -> ceilings.asked(MODEL, 8193)).isInstanceOf(MaxTokensException.class)
                .hasMessage("max_tokens is 8193, more than 8192: the context of model m is 8192 tokens, as its server "
                        + "reports it; send at most 8192");
    }

    @Test
    void anOperatorsCapBelowTheContextIsTheCeilingAndSaysSo() {
        var ceilings = ceilings(OptionalInt.of(1000), reported(8192, true));

        assertThat(ceilings.ceiling(MODEL).tokens()).isEqualTo(1000);
        assertThatThrownBy(() -> ceilings.asked(MODEL, 1001))
                .hasMessage("max_tokens is 1001, more than 1000: this gateway caps max_tokens at 1000 (GATEWAY_MAX_TOKENS); "
                        + "send at most 1000");
    }

    @Test
    void aCapAboveTheContextLeavesTheContextAsTheCeiling() {
        assertThat(ceilings(OptionalInt.of(100_000), reported(4096, false)).ceiling(MODEL).tokens()).isEqualTo(4096);
    }

    @Test
    void aModelWhoseServerDoesNotReportItsContextHasTheCapOrTheDocumentedDefault() {
        var unreported = ceilings(OptionalInt.empty(), ModelContext.UNREPORTED);
        assertThat(unreported.ceiling(MODEL).tokens()).isEqualTo(TokenCeilings.UNREPORTED_CONTEXT).isEqualTo(4096);
        assertThatThrownBy(() -> unreported.asked(MODEL, 4097))
                .hasMessageContaining("the server of model m does not report its context, and the gateway assumes 4096 tokens");

        assertThat(ceilings(OptionalInt.of(16_384), ModelContext.UNREPORTED).asked(MODEL, 16_384)).isEqualTo(16_384);
    }

    @Test
    void fewerThanOneTokenIsRefused() {
        assertThatThrownBy(() -> ceilings(OptionalInt.empty(), reported(4096, false)).asked(MODEL, 0))
                .hasMessage("max_tokens must be at least 1, was 0");
    }

    @Test
    void eachEndpointHasItsDocumentedDefaultWithinTheCeiling() {
        var ceilings = ceilings(OptionalInt.empty(), reported(4096, true));
        List<Prompt> text = List.of(new Prompt.Text("hello"));
        var chat = ceilings.chat(MODEL, List.of(new Prompt.Message("user", "hi")));

        assertThat(ceilings.byDefault(MODEL, text, TokenCeilings.COMPLETIONS_DEFAULT)).as("/v1/completions").isEqualTo(16);
        assertThat(ceilings.byDefault(MODEL, text, TokenCeilings.COMPLETE_DEFAULT)).as("/complete").isEqualTo(256);
        // chat: the context less the prompt's bound, 10 + ("user" + "hi" + 4) = 20
        assertThat(chat.template()).isEqualTo(TEMPLATE);
        assertThat(ceilings.remaining(MODEL, List.of(chat))).as("chat").isEqualTo(4096 - 20);
        // an operator's cap caps the chat's default too
        assertThat(ceilings(OptionalInt.of(1000), reported(4096, true)).remaining(MODEL, List.of(chat))).isEqualTo(1000);
        // a small cap caps the fixed defaults
        assertThat(ceilings(OptionalInt.of(100), reported(4096, true)).byDefault(MODEL, text, 256)).isEqualTo(100);
        // with the context unreported, a chat gets the ceiling
        assertThat(ceilings(OptionalInt.empty(), ModelContext.UNREPORTED).remaining(MODEL, List.of(chat))).isEqualTo(4096);
    }

    @Test
    void whereTheServerRefusesBeyondItsContextADefaultLeavesRoomForThePromptsBound() {
        List<Prompt> prompt = List.of(new Prompt.Text("x".repeat(200))); // bound 216
        // refusing (vLLM): 300 - 216 = 84 left for /complete's 256
        assertThat(ceilings(OptionalInt.empty(), reported(300, true)).byDefault(MODEL, prompt, 256)).isEqualTo(84);
        // stopping at the context (llama.cpp, Ollama): the server cuts the generation short itself
        assertThat(ceilings(OptionalInt.empty(), reported(300, false)).byDefault(MODEL, prompt, 256)).isEqualTo(256);
        // several prompts: the longest one's bound counts
        List<Prompt> two = List.of(new Prompt.Text("short"), new Prompt.Text("x".repeat(250))); // bound 266
        assertThat(ceilings(OptionalInt.empty(), reported(300, true)).byDefault(MODEL, two, 256)).isEqualTo(34);
    }

    @Test
    void aPromptWhoseBoundFillsTheContextStillGetsTheLeastDefaultForTheServerToJudge() {
        List<Prompt> long_ = List.of(new Prompt.Text("x".repeat(5000)));
        var ceilings = ceilings(OptionalInt.empty(), reported(4096, true));

        assertThat(ceilings.byDefault(MODEL, long_, 256)).isEqualTo(16);
        assertThat(ceilings.byDefault(MODEL, long_, 16)).isEqualTo(16);
        assertThat(ceilings.remaining(MODEL, long_)).isEqualTo(16);
        assertThat(ceilings(OptionalInt.of(8), reported(4096, true)).remaining(MODEL, long_)).as("within the cap").isEqualTo(8);
    }

    @Test
    void severalServersOfAModelAgreeOnTheSmallestContextAndTheWidestTemplate() {
        var both = ModelContext.of(8192, false, new ChatTemplate(10, 8))
                .and(ModelContext.of(4096, true, new ChatTemplate(30, 4)))
                .and(new ModelContext(OptionalInt.empty(), false, new ChatTemplate(0, 0)));

        assertThat(both).isEqualTo(ModelContext.of(4096, true, new ChatTemplate(30, 8)));
    }
}
