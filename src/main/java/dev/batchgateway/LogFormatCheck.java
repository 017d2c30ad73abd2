package dev.batchgateway;

import java.util.Set;
import org.springframework.boot.EnvironmentPostProcessor;
import org.springframework.boot.SpringApplication;
import org.springframework.core.env.ConfigurableEnvironment;

/**
 * Checks GATEWAY_LOG_FORMAT before logging starts: Spring would otherwise fail with a long stack trace that never
 * names the variable. (Runs before the logging listener, which reads the environment only once it is prepared.)
 */
class LogFormatCheck implements EnvironmentPostProcessor {

    private static final Set<String> FORMATS = Set.of("", "ecs", "logstash", "gelf");

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment environment, SpringApplication application) {
        String format = environment.getProperty("logging.structured.format.console", "").strip();
        // a class name is Spring's way to plug in a custom format
        if (!FORMATS.contains(format.toLowerCase(java.util.Locale.ROOT)) && !format.contains(".")) {
            throw new InvalidConfigurationException("GATEWAY_LOG_FORMAT=" + format
                    + " is not a log format: set it to ecs, logstash or gelf (JSON), or to empty for plain text");
        }
    }
}
