package dev.batchgateway;

import ch.qos.logback.classic.pattern.TargetLengthBasedClassNameAbbreviator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxy;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import org.springframework.boot.logging.StandardStackTracePrinter;
import org.springframework.boot.logging.structured.StructuredLogFormatter;
import org.springframework.core.env.Environment;

/**
 * The plain-text log format ({@code GATEWAY_LOG_FORMAT} empty): Spring Boot's console line, but with every control
 * character in a logged value escaped ({@code \n}, {@code \r}, {@code \t}, {@code \u001b}, …), as the JSON formats do.
 * Logged values carry what clients sent (a refused field's name, a key's prefix): a field named {@code "a\n2026-… INFO
 * … admin token accepted"} would otherwise print a forged line of its own.
 */
public final class PlainTextLogFormat implements StructuredLogFormatter<ILoggingEvent> {

    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSXXX");

    private final long pid = ProcessHandle.current().pid();
    private final String application;
    private final ZoneId zone = ZoneId.systemDefault();
    private final TargetLengthBasedClassNameAbbreviator loggerName = new TargetLengthBasedClassNameAbbreviator(39);
    // an exception's message is a logged value too; its frames are the gateway's own code
    private final StandardStackTracePrinter stackTrace = StandardStackTracePrinter.rootLast()
            .withLineSeparator("\n")
            .withFormatter(thrown -> thrown.getClass().getName()
                    + (thrown.getLocalizedMessage() == null ? "" : ": " + escaped(thrown.getLocalizedMessage())));

    public PlainTextLogFormat(Environment environment) {
        this.application = environment.getProperty("spring.application.name", "");
    }

    @Override
    public String format(ILoggingEvent event) {
        var line = new StringBuilder(160);
        line.append(TIME.format(Instant.ofEpochMilli(event.getTimeStamp()).atZone(zone)))
                .append(' ').append(String.format("%5s", event.getLevel()))
                .append(' ').append(pid).append(" --- ");
        if (!application.isEmpty()) {
            line.append('[').append(application).append("] ");
        }
        line.append('[').append(escaped(event.getThreadName())).append("] ")
                .append(String.format("%-40.40s", loggerName.abbreviate(event.getLoggerName())))
                .append(" : ").append(escaped(event.getFormattedMessage())).append('\n');
        if (event.getThrowableProxy() instanceof ThrowableProxy thrown) {
            try {
                stackTrace.printStackTrace(thrown.getThrowable(), line);
            } catch (IOException cannotHappen) {
                throw new UncheckedIOException(cannotHappen); // a StringBuilder does not fail
            }
        }
        return line.toString();
    }

    /** The text with every control character (C0, DEL, C1) and Unicode line separator written as an escape. */
    static String escaped(String text) {
        if (text == null) {
            return "null";
        }
        StringBuilder out = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            String escape = switch (c) {
                case '\n' -> "\\n";
                case '\r' -> "\\r";
                case '\t' -> "\\t";
                default -> Character.isISOControl(c) || c == '\u2028' || c == '\u2029' ? String.format("\\u%04x", (int) c) : null;
            };
            if (escape != null && out == null) {
                out = new StringBuilder(text.length() + 16).append(text, 0, i);
            }
            if (out != null) {
                if (escape != null) {
                    out.append(escape);
                } else {
                    out.append(c);
                }
            }
        }
        return out == null ? text : out.toString();
    }
}
