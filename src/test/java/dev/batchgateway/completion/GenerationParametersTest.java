package dev.batchgateway.completion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Generation parameters are the batch key: equal only when every setting is, and valid when made. */
class GenerationParametersTest {

    @Test
    void requestsShareABatchOnlyWhenEverySettingIsEqual() {
        var plain = new GenerationParameters(16);

        assertThat(plain).isEqualTo(new GenerationParameters(null, 16, null, null, List.of(), null));
        assertThat(new GenerationParameters(null, 16, 0.7, 0.9, List.of("\n"), 7L))
                .isEqualTo(new GenerationParameters(null, 16, 0.7, 0.9, List.of("\n"), 7L))
                .isNotEqualTo(new GenerationParameters(null, 16, 0.8, 0.9, List.of("\n"), 7L))
                .isNotEqualTo(new GenerationParameters(null, 16, 0.7, 1.0, List.of("\n"), 7L))
                .isNotEqualTo(new GenerationParameters(null, 16, 0.7, 0.9, List.of("."), 7L))
                .isNotEqualTo(new GenerationParameters(null, 16, 0.7, 0.9, List.of("\n"), 8L))
                .isNotEqualTo(new GenerationParameters(null, 17, 0.7, 0.9, List.of("\n"), 7L))
                .isNotEqualTo(new GenerationParameters("llama3.2:1b", 16, 0.7, 0.9, List.of("\n"), 7L))
                .isNotEqualTo(plain);
    }

    @Test
    void theStopSequencesAreCopied() {
        List<String> stop = new ArrayList<>(List.of("a"));
        var parameters = new GenerationParameters(null, 4, null, null, stop, null);
        stop.add("b");

        assertThat(parameters.stop()).containsExactly("a");
    }

    @Test
    void outOfRangeSettingsAreRefused() {
        assertThatThrownBy(() -> new GenerationParameters(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new GenerationParameters(" ", 4, null, null, List.of(), null)).hasMessageContaining("model");
        assertThatThrownBy(() -> new GenerationParameters(null, 4, -0.1, null, List.of(), null)).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new GenerationParameters(null, 4, 2.1, null, List.of(), null)).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new GenerationParameters(null, 4, Double.NaN, null, List.of(), null)).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new GenerationParameters(null, 4, null, 0.0, List.of(), null)).hasMessageContaining("top_p");
        assertThatThrownBy(() -> new GenerationParameters(null, 4, null, 1.01, List.of(), null)).hasMessageContaining("top_p");
        assertThatThrownBy(() -> new GenerationParameters(null, 4, null, null, List.of("a", "b", "c", "d", "e"), null))
                .hasMessageContaining("stop");
        assertThatThrownBy(() -> new GenerationParameters(null, 4, null, null, List.of(""), null)).hasMessageContaining("stop");
        assertThat(new GenerationParameters(null, 4, 0.0, 1.0, List.of("a", "b", "c", "d"), -1L).temperature()).isZero();
    }
}
