package dev.batchgateway;

import java.util.Map;
import java.util.Set;
import org.springframework.boot.EnvironmentPostProcessor;
import org.springframework.boot.SpringApplication;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.MapPropertySource;

/**
 * Checks GATEWAY_LOG_FORMAT before logging starts: Spring would otherwise fail with a long stack trace that never
 * names the variable. Runs before the logging listener: a bad format is replaced by plain text, so that logging starts,
 * and {@link SettingsCheck} refuses it with the other settings (failing here, before logging is configured, would
 * print Spring's multi-line banner). Plain text is the gateway's own {@link PlainTextLogFormat}, which escapes
 * control characters in logged values as the JSON formats do; Spring's plain pattern would print them raw.
 */
class LogFormatCheck implements EnvironmentPostProcessor {

    static final String INVALID = "batch-gateway.invalid-log-format";

    private static final Set<String> FORMATS = Set.of("", "ecs", "logstash", "gelf");

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment environment, SpringApplication application) {
        String format = environment.getProperty("logging.structured.format.console", "").strip();
        // a class name is Spring's way to plug in a custom format
        if (!FORMATS.contains(format.toLowerCase(java.util.Locale.ROOT)) && !format.contains(".")) {
            environment.getPropertySources().addFirst(new MapPropertySource("invalidLogFormat", Map.of(
                    "logging.structured.format.console", PlainTextLogFormat.class.getName(), INVALID, format)));
        } else if (format.isEmpty()) {
            environment.getPropertySources().addFirst(new MapPropertySource("plainTextLogFormat", Map.of(
                    "logging.structured.format.console", PlainTextLogFormat.class.getName())));
        }
    }
}
