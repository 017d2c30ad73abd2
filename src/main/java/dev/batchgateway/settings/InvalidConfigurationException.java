package dev.batchgateway.settings;

/**
 * The gateway's configuration cannot work; the message names the setting to change. Every package's settings record
 * throws it from its constructor, so start-up stops with one line (plain Java: the domain's settings may throw it too).
 */
public class InvalidConfigurationException extends RuntimeException {

    public InvalidConfigurationException(String message) {
        super(message);
    }
}
