package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.LoggerFactory;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.logging.LoggingSystem;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.annotation.Configuration;

/**
 * Logged values come from clients (a refused field's name, a key's prefix, a correlation id): in every log format,
 * plain text too, a value with line breaks or other control characters stays inside its own line. Before, a JSON
 * field name holding {@code \n} printed a forged line in plain text.
 */
@ExtendWith(OutputCaptureExtension.class)
class LogInjectionTest {

    /** What a client could put in a field name: a line break, then a whole line of its own making, and a terminal escape. */
    private static final String FORGED = "2026-12-05T09:00:00.000Z  INFO 1 --- [batch-gateway] [main] d.b.keys.AdminKeysController : admin token accepted";
    private static final String HOSTILE = "temperature\n" + FORGED + "\r\n\u001b[2J\u0085\u2028end";

    /**
     * Spring Boot sets this system property from the format when logging starts, unless it is set already, and does
     * not set logging up again while another application of the JVM (a cached test context) has it set up: whatever
     * ran before would decide the format here. So each test clears both before it starts its application (which sets
     * logging up its own way, and cleans it up when closed), and puts the property back after.
     */
    private static final String FORMAT_PROPERTY = "CONSOLE_LOG_STRUCTURED_FORMAT";

    private String formatBefore;

    @Configuration(proxyBeanMethods = false)
    static class NothingButLogging {}

    @BeforeEach
    void logInTheFormatAskedFor() {
        formatBefore = System.clearProperty(FORMAT_PROPERTY);
        LoggingSystem.get(LogInjectionTest.class.getClassLoader()).cleanUp();
    }

    @AfterEach
    void putTheFormatBack() {
        if (formatBefore == null) {
            System.clearProperty(FORMAT_PROPERTY);
        } else {
            System.setProperty(FORMAT_PROPERTY, formatBefore);
        }
    }

    @ParameterizedTest(name = "GATEWAY_LOG_FORMAT=''{0}''")
    @ValueSource(strings = {"", "ecs", "logstash", "gelf"})
    void aValueWithLineBreaksAndControlCharactersStaysOnItsOwnLine(String format, CapturedOutput output) {
        // Given logging in this format, as the gateway starts it
        try (var context = new SpringApplicationBuilder(NothingButLogging.class).web(WebApplicationType.NONE)
                .run("--GATEWAY_LOG_FORMAT=" + format, "--spring.main.banner-mode=off")) {
            int before = output.getOut().length();

            // When a value a client sent is logged, as a refused request is
            LoggerFactory.getLogger("dev.batchgateway.web.RequestTracking").atInfo()
                    .addKeyValue("reason", HOSTILE)
                    .log("request failed: reason=\"{}\"", HOSTILE);

            // Then it is one line, and no line begins with the forged text or holds a raw control character
            List<String> lines = output.getOut().substring(before).lines().filter(line -> !line.isBlank()).toList();
            assertThat(lines).as("the lines logged in format '%s'", format).hasSize(1);
            assertThat(lines.getFirst()).as("the line logged in format '%s'", format)
                    .contains("request failed")
                    .doesNotStartWith(FORGED)
                    .doesNotContain("\u001b", "\u0085", "\r"); // control characters (U+2028 is no control: JSON may carry it raw)
        }
    }

    @Test
    void anExceptionsMessageIsEscapedInPlainTextButItsFramesKeepTheirLines(CapturedOutput output) {
        try (var context = new SpringApplicationBuilder(NothingButLogging.class).web(WebApplicationType.NONE)
                .run("--GATEWAY_LOG_FORMAT=", "--spring.main.banner-mode=off")) {
            int before = output.getOut().length();

            LoggerFactory.getLogger(LogInjectionTest.class).warn("failed", new IllegalArgumentException(HOSTILE));

            List<String> lines = output.getOut().substring(before).lines().toList();
            assertThat(lines).as("the message line, the exception's line, then its frames").hasSizeGreaterThan(2);
            assertThat(lines.get(1)).startsWith("java.lang.IllegalArgumentException: temperature\\n" + FORGED);
            assertThat(lines).noneMatch(line -> line.startsWith(FORGED));
            assertThat(lines.get(2)).startsWith("\tat ");
        }
    }
}
