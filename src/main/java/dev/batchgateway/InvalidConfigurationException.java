package dev.batchgateway;

/** The gateway's configuration cannot work; the message names the setting to change. */
public class InvalidConfigurationException extends RuntimeException {

    public InvalidConfigurationException(String message) {
        super(message);
    }
}
