package dev.batchgateway.web;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.time.Duration;
import java.util.OptionalInt;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * The web adapter's settings, bound from {@code gateway.*}: what one request may ask ({@code GATEWAY_MAX_TOKENS}, the
 * operator's cap of {@code max_tokens} below the models' contexts, null for none; {@code GATEWAY_MAX_PROMPT_CHARS}), how long its caller waits ({@code GATEWAY_REQUEST_TIMEOUT}), and how the API port
 * protects itself from slow and numerous clients: {@code GATEWAY_HEADER_TIMEOUT} and {@code GATEWAY_BODY_TIMEOUT},
 * within which a request's headers and then its body must have arrived, else its connection is closed; {@code
 * GATEWAY_MAX_CONNECTIONS}, the open connections beyond which new ones are closed at once; {@code GATEWAY_ACCEPT_QUEUE},
 * the listen backlog for bursts of new connections.
 */
@ConfigurationProperties("gateway")
public record WebSettings(
        Integer maxTokens,
        int maxPromptChars,
        Duration requestTimeout,
        Duration headerTimeout,
        Duration bodyTimeout,
        int maxConnections,
        int acceptQueue) {

    public WebSettings {
        require(maxTokens == null || maxTokens >= 1,
                "GATEWAY_MAX_TOKENS must be at least 1, or empty for no cap below the models' contexts, was " + maxTokens);
        require(maxPromptChars >= 1, "GATEWAY_MAX_PROMPT_CHARS must be at least 1, was " + maxPromptChars);
        require(requestTimeout != null && requestTimeout.isPositive(),
                "GATEWAY_REQUEST_TIMEOUT must be a positive duration (e.g. 30s), was " + requestTimeout);
        require(headerTimeout != null && headerTimeout.isPositive(),
                "GATEWAY_HEADER_TIMEOUT must be a positive duration, e.g. 10s, was " + headerTimeout);
        require(bodyTimeout != null && bodyTimeout.isPositive(),
                "GATEWAY_BODY_TIMEOUT must be a positive duration, e.g. 30s, was " + bodyTimeout);
        require(maxConnections >= 1, "GATEWAY_MAX_CONNECTIONS must be at least 1, was " + maxConnections);
        require(acceptQueue >= 1, "GATEWAY_ACCEPT_QUEUE must be at least 1, was " + acceptQueue);
    }

    /** The operator's cap of {@code max_tokens}, empty for none: then each model's context is the ceiling. */
    public OptionalInt tokenCap() {
        return maxTokens == null ? OptionalInt.empty() : OptionalInt.of(maxTokens);
    }

    /** The body's deadline: its own timeout, or the whole request's if that is shorter (its deadline would pass first). */
    Duration bodyDeadline() {
        return bodyTimeout.compareTo(requestTimeout) <= 0 ? bodyTimeout : requestTimeout;
    }

    private static void require(boolean valid, String message) {
        if (!valid) {
            throw new InvalidConfigurationException(message);
        }
    }
}
