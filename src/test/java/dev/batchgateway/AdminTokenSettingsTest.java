package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.batchgateway.identity.IdentitySettings;
import dev.batchgateway.settings.InvalidConfigurationException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.env.YamlPropertySourceLoader;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.springframework.core.io.ClassPathResource;

/**
 * GATEWAY_ADMIN_TOKEN and GATEWAY_ADMIN_TOKENS as the environment gives them, read through application.yml and checked
 * as at start-up (no application is started): every token an HTTP header can carry is taken as given, any other is
 * refused with a message that names the variable and never shows the token.
 */
class AdminTokenSettingsTest {

    /** Every printable ASCII character, space, '!', '"' and '\' included (but no "${", below). */
    private static final String EVERY_PRINTABLE = IntStream.rangeClosed(0x20, 0x7e)
            .mapToObj(c -> String.valueOf((char) c)).collect(Collectors.joining()).strip();

    @Test
    void everyPrintableAsciiTokenIsTakenAsGivenAndSeveralMayBeListed() {
        String old = "old-token-" + "o".repeat(30);
        String spaced = "a new token! with spaces, and \"quotes\" " + "n".repeat(10);
        assertThat(adminTokens(Map.of("GATEWAY_ADMIN_TOKEN", EVERY_PRINTABLE))).containsExactly(EVERY_PRINTABLE);
        assertThat(adminTokens(Map.of("GATEWAY_ADMIN_TOKEN", spaced))).as("a comma is only a separator in the list")
                .containsExactly(spaced);
        assertThat(adminTokens(Map.of("GATEWAY_ADMIN_TOKENS", " " + old + " ,, a new token! with spaces " + "n".repeat(20) + ",")))
                .as("white space around each token is no part of it, empty entries are nothing")
                .containsExactly(old, "a new token! with spaces " + "n".repeat(20));
        assertThat(adminTokens(Map.of("GATEWAY_ADMIN_TOKEN", old, "GATEWAY_ADMIN_TOKENS", spaced.replace(",", ""))))
                .containsExactly(old, spaced.replace(",", ""));
        assertThat(adminTokens(Map.of())).as("none: the admin API is disabled").isEmpty();
        assertThat(adminTokens(Map.of("GATEWAY_ADMIN_TOKEN", "x".repeat(512)))).hasSize(1);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', textBlock = """
            tab                 | GATEWAY_ADMIN_TOKEN  | a-token-with-a\\tTAB-of-32-characters-or-more | GATEWAY_ADMIN_TOKEN has a control character
            line break          | GATEWAY_ADMIN_TOKENS | first-token-of-32-characters-or-more,a-token-with-a\\nnew-line-32-characters | GATEWAY_ADMIN_TOKENS' token 2 has a control character
            DEL                 | GATEWAY_ADMIN_TOKEN  | a-token-with-a\\177DEL-of-32-characters-or-more | GATEWAY_ADMIN_TOKEN has a control character
            beyond ASCII        | GATEWAY_ADMIN_TOKEN  | ein-Schlüssel-aus-mindestens-32-Zeichen | GATEWAY_ADMIN_TOKEN has a character beyond ASCII
            no-break space      | GATEWAY_ADMIN_TOKEN  | a-token-with-a\\240no-break-space-32-characters | GATEWAY_ADMIN_TOKEN has a character beyond ASCII
            too short in a list | GATEWAY_ADMIN_TOKENS | first-token-of-32-characters-or-more,short-secret | GATEWAY_ADMIN_TOKENS' token 2 must be at least 32 characters, was 12
            placeholder         | GATEWAY_ADMIN_TOKEN  | a-token-of-32-characters-${user.home} | GATEWAY_ADMIN_TOKEN holds '${', which Spring reads as a placeholder
            escaped placeholder | GATEWAY_ADMIN_TOKENS | a-token-of-32-characters-or-more-\\\\${x} | GATEWAY_ADMIN_TOKENS holds '${'
            """)
    void aTokenNoHttpHeaderCanCarryIsRefusedByNameWithoutShowingIt(String kind, String variable, String token, String message) {
        String given = token.translateEscapes();

        var refused = catchThrowableOfType(InvalidConfigurationException.class, () -> adminTokens(Map.of(variable, given)));

        assertThat(refused).as("refused").isNotNull();
        assertThat(refused.getMessage()).startsWith(message);
        for (String each : given.split(",")) {
            assertThat(refused.getMessage()).doesNotContain(each.substring(0, 12));
        }
    }

    @Test
    void aTokenOverFiveHundredAndTwelveCharactersIsRefused() {
        assertThatThrownBy(() -> adminTokens(Map.of("GATEWAY_ADMIN_TOKEN", "x".repeat(513))))
                .isInstanceOf(InvalidConfigurationException.class)
                .hasMessageStartingWith("GATEWAY_ADMIN_TOKEN must be at most 512 characters, was 513");
    }

    /** The admin tokens the gateway would accept with this environment, after the start-up check. */
    private static List<String> adminTokens(Map<String, String> variables) {
        var environment = new StandardEnvironment();
        // the machine's own environment stays out: only these variables, application.yml and system properties
        environment.getPropertySources().remove(StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME);
        var given = new HashMap<String, Object>(variables);
        given.put("GATEWAY_WORKER_TYPE", "simulated");
        environment.getPropertySources().addFirst(new SystemEnvironmentPropertySource("variables", given));
        try {
            new YamlPropertySourceLoader().load("application.yml", new ClassPathResource("application.yml"))
                    .forEach(environment.getPropertySources()::addLast);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        SettingsCheck.check(environment);
        return Binder.get(environment).bind("gateway.identity", Bindable.of(IdentitySettings.class))
                .map(IdentitySettings::allAdminTokens).orElse(List.of());
    }
}
