package dev.batchgateway.http;

import static dev.batchgateway.http.Refusals.badRequest;
import static dev.batchgateway.http.Refusals.shown;

import dev.batchgateway.identity.UserIds;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Pattern;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The values the API's paths, queries and JSON bodies carry (user ids, key ids, times and windows, limits), read one
 * way for every controller; a bad one is refused with a 400 that names it and echoes it (shortened).
 */
public final class RequestValues {

    /** A user's or a key's limits, each given in full: null for no limit. */
    public static final List<String> LIMIT_FIELDS = List.of("tokens_per_day", "tokens_per_month", "requests_per_minute");

    private static final Pattern UUID_SHAPE =
            Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    // PostgreSQL's timestamptz reaches further both ways; four-digit years keep every bound storable and readable
    private static final Instant EARLIEST = Instant.parse("0001-01-01T00:00:00Z");
    private static final Instant LATEST = Instant.parse("9999-12-31T23:59:59.999999Z");
    /** RFC 3339: a four-digit year, a time and an offset ({@code Z} or {@code ±hh:mm}); {@code t} and {@code z} as well. */
    private static final Pattern RFC_3339_YEAR = Pattern.compile("[0-9]{4}-.*");
    private static final DateTimeFormatter RFC_3339 = new DateTimeFormatterBuilder()
            .parseCaseInsensitive().append(DateTimeFormatter.ISO_OFFSET_DATE_TIME).toFormatter();

    private RequestValues() {}

    /** A window of time asked for; either end may be open (null). */
    public record Range(Instant from, Instant to) {}

    /** How a limit that is no whole number from 0 is refused: the words each endpoint has always answered with. */
    public enum LimitRefusal {
        /** The user limits API: "… must be a JSON integer, or null …", then "… must be between 0 and …, or null …". */
        TYPE_THEN_RANGE,
        /** The key API: "… must be a JSON integer from 0 to …, or null …" for either. */
        ONE_SENTENCE
    }

    /** Limits read from a JSON object: each null for no limit. */
    public record Limits(Long tokensPerDay, Long tokensPerMonth, Long requestsPerMinute) {}

    /** A user id in a path or a query: decimal digits of a number from 1 to 2^63−1, as {@link UserIds} reads it. */
    public static long userId(String text) {
        return UserIds.parse(text).orElseThrow(() -> badRequest(UserIds.refusal(text)));
    }

    /** A user id in a JSON body: an integer from 1 to 2^63−1, not a string of digits. */
    public static long userId(JsonNode userId) {
        if (userId == null || userId.isNull()) {
            throw badRequest("user_id is required");
        }
        if (!userId.isIntegralNumber()) {
            throw badRequest("user_id must be a JSON integer");
        }
        if (!userId.canConvertToLong() || userId.longValue() < 1) {
            throw badRequest("user_id must be between 1 and " + Long.MAX_VALUE);
        }
        return userId.longValue();
    }

    /**
     * A UUID in a path, in its canonical 8-4-4-4-12 hex digits ({@link UUID#fromString} also takes "1-1-1-1-1").
     *
     * @param what how the refusal names it, e.g. "the key id"
     */
    public static UUID uuid(String what, String text) {
        if (!UUID_SHAPE.matcher(text).matches()) {
            throw badRequest(what + " must be a UUID, was '" + shown(text) + "'");
        }
        return UUID.fromString(text);
    }

    /**
     * A window from {@code from} (inclusive) to {@code to} (exclusive) in a query, each an ISO-8601 instant with a four-digit
     * year, or absent for open; {@code from} must not be after {@code to}.
     */
    public static Range range(String from, String to) {
        Instant start = instant("from", from);
        Instant end = instant("to", to);
        if (start != null && end != null && start.isAfter(end)) {
            throw badRequest("from (" + start + ") must not be after to (" + end + ")");
        }
        return new Range(start, end);
    }

    /** An ISO-8601 instant in a query ({@code Z} only, surrounding blanks ignored) with a four-digit year; null if absent. */
    public static Instant instant(String name, String text) {
        if (text == null) {
            return null;
        }
        Instant instant;
        try {
            instant = Instant.parse(text.strip());
        } catch (DateTimeException notAnInstant) {
            throw badRequest(name + " must be an ISO-8601 instant such as 2026-01-31T00:00:00Z, was '" + shown(text) + "'");
        }
        if (instant.isBefore(EARLIEST) || instant.isAfter(LATEST)) {
            throw badRequest(name + " must lie between " + EARLIEST + " and " + LATEST + ", was " + instant);
        }
        return instant;
    }

    /** An RFC 3339 time with an offset and a four-digit year; empty when the text is none (the caller words the refusal). */
    public static Optional<Instant> rfc3339(String text) {
        if (text != null && RFC_3339_YEAR.matcher(text).matches()) {
            try {
                return Optional.of(OffsetDateTime.parse(text, RFC_3339).toInstant());
            } catch (DateTimeException notATime) {
                // empty below
            }
        }
        return Optional.empty();
    }

    /**
     * A request body that must be a JSON object; read only once the caller may send it, so that nobody else learns what
     * it should hold.
     *
     * @param json the application's mapper, with the gateway's read limits and strict duplicate detection
     * @param fields what the object holds, for the refusal: "a JSON object with {@code fields}"
     */
    public static JsonNode jsonObject(byte[] bytes, JsonMapper json, String fields) {
        if (bytes == null || bytes.length == 0) {
            throw badRequest("the request body is missing: send a JSON object with " + fields);
        }
        JsonNode body;
        try {
            body = json.readTree(bytes);
        } catch (JacksonException notJson) {
            throw badRequest("the request body is not valid JSON");
        }
        if (body == null || !body.isObject()) {
            throw badRequest("the request body must be a JSON object with " + fields);
        }
        return body;
    }

    /**
     * Refuses a field the object may not have: a misspelt one would otherwise be silently ignored.
     *
     * @param path where the object is, for the refusal: "" for the body, "limits." for a field of the body
     * @param known what the object may hold, in words, e.g. "limits are tokens_per_day, …"
     */
    public static void onlyFields(JsonNode object, Collection<String> fields, String path, String known) {
        for (String field : object.propertyNames()) {
            if (!fields.contains(field)) {
                throw badRequest("unknown field " + path + shown(field) + ": " + known);
            }
        }
    }

    /**
     * The three limits of {@link #LIMIT_FIELDS} in a JSON object and nothing else, every one given, so that a forgotten
     * one is not silently unlimited: null says so.
     *
     * @param path where the object is, for the refusals: "" for the body, "limits." for a field of the body
     */
    public static Limits limits(JsonNode object, String path, LimitRefusal refusal) {
        onlyFields(object, LIMIT_FIELDS, path, "limits are " + String.join(", ", LIMIT_FIELDS));
        return new Limits(limit(object, "tokens_per_day", path, refusal), limit(object, "tokens_per_month", path, refusal),
                limit(object, "requests_per_minute", path, refusal));
    }

    private static Long limit(JsonNode object, String field, String path, LimitRefusal refusal) {
        String name = path + field;
        if (!object.has(field)) {
            throw badRequest(name + " is required: a whole number from 0, or null for no limit");
        }
        JsonNode value = object.get(field);
        if (value.isNull()) {
            return null;
        }
        boolean wholeNumber = value.isIntegralNumber();
        boolean inRange = wholeNumber && value.canConvertToLong() && value.longValue() >= 0;
        if (!inRange) {
            throw badRequest(switch (refusal) {
                case ONE_SENTENCE -> name + " must be a JSON integer from 0 to " + Long.MAX_VALUE + ", or null for no limit";
                case TYPE_THEN_RANGE -> wholeNumber
                        ? name + " must be between 0 and " + Long.MAX_VALUE + ", or null for no limit"
                        : name + " must be a JSON integer, or null for no limit";
            });
        }
        return value.longValue();
    }

    /** Whether the text holds half of a surrogate pair alone: "\ud800" is valid JSON but no text, not writable as UTF-8. */
    public static boolean hasUnpairedSurrogate(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return true;
            }
        }
        return false;
    }
}
