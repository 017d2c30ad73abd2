package dev.batchgateway.budget;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.Locale;

/** The calendar windows limits are counted in, in UTC: what a request counts against is the window it was admitted in. */
public enum Window {
    /** Requests per calendar minute. */
    MINUTE("requests_per_minute", "requests_this_minute"),
    /** Tokens per calendar day. */
    DAY("tokens_per_day", "tokens_today"),
    /** Tokens per calendar month. */
    MONTH("tokens_per_month", "tokens_this_month");

    private final String limitName;
    private final String remainingName;

    Window(String limitName, String remainingName) {
        this.limitName = limitName;
        this.remainingName = remainingName;
    }

    /** The name of its limit in the API, e.g. {@code tokens_per_day}. */
    public String limitName() {
        return limitName;
    }

    /** The name of what remains of it in the API, e.g. {@code tokens_today}. */
    public String remainingName() {
        return remainingName;
    }

    /** Its name where budgets are kept: {@code minute}, {@code day} or {@code month}. */
    public String word() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Whether it counts requests (one per completion) rather than tokens. */
    public boolean countsRequests() {
        return this == MINUTE;
    }

    /** The start of the window that holds {@code at}. */
    public Instant start(Instant at) {
        return switch (this) {
            case MINUTE -> at.truncatedTo(ChronoUnit.MINUTES);
            case DAY -> at.truncatedTo(ChronoUnit.DAYS);
            case MONTH -> at.atOffset(ZoneOffset.UTC).withDayOfMonth(1).truncatedTo(ChronoUnit.DAYS).toInstant();
        };
    }

    /** The end (exclusive) of the window that starts at {@code start}. */
    public Instant end(Instant start) {
        return switch (this) {
            case MINUTE -> start.plus(1, ChronoUnit.MINUTES);
            case DAY -> start.plus(1, ChronoUnit.DAYS);
            case MONTH -> start.atOffset(ZoneOffset.UTC).plusMonths(1).toInstant();
        };
    }
}
