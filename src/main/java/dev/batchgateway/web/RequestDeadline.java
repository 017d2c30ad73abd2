package dev.batchgateway.web;

import java.math.BigDecimal;
import java.time.Duration;
import java.util.regex.Pattern;

/**
 * The {@code Request-Timeout} header: the caller's own deadline for the whole request, in seconds with up to three
 * decimals ({@code 2}, {@code 0.5}, {@code 1.250}). It can only shorten the gateway's request timeout, never lengthen it.
 */
final class RequestDeadline {

    static final String HEADER = "Request-Timeout";
    private static final Pattern SECONDS = Pattern.compile("\\d{1,9}(\\.\\d{1,3})?");

    private RequestDeadline() {}

    static Duration parse(String header) {
        String value = header.strip();
        if (!SECONDS.matcher(value).matches()) {
            throw new InvalidRequestException(
                    HEADER + " must be a number of seconds greater than 0, with at most three decimals (e.g. 2 or 0.5)");
        }
        Duration timeout = Duration.ofMillis(new BigDecimal(value).movePointRight(3).longValueExact());
        if (!timeout.isPositive()) {
            throw new InvalidRequestException(HEADER + " must be greater than 0");
        }
        return timeout;
    }
}
