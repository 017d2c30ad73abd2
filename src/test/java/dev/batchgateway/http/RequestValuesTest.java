package dev.batchgateway.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.http.RequestValues.LimitRefusal;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.http.HttpStatus;
import org.springframework.web.server.ResponseStatusException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The words every controller refuses a bad value with: the admin API's answers, pinned where they are written once. */
class RequestValuesTest {

    private final JsonMapper json = JsonMapper.builder().build();

    @ParameterizedTest(name = "{0} ({1})")
    @CsvSource(delimiter = '|', textBlock = """
            {"tokens_per_day": null, "requests_per_minute": 1}                                    | TYPE_THEN_RANGE | tokens_per_month is required: a whole number from 0, or null for no limit
            {"tokens_per_day": "5", "tokens_per_month": null, "requests_per_minute": 1}          | TYPE_THEN_RANGE | tokens_per_day must be a JSON integer, or null for no limit
            {"tokens_per_day": 1.5, "tokens_per_month": null, "requests_per_minute": 1}          | TYPE_THEN_RANGE | tokens_per_day must be a JSON integer, or null for no limit
            {"tokens_per_day": -1, "tokens_per_month": null, "requests_per_minute": 1}           | TYPE_THEN_RANGE | tokens_per_day must be between 0 and 9223372036854775807, or null for no limit
            {"tokens_per_day": 9223372036854775808, "tokens_per_month": 1, "requests_per_minute": 1} | TYPE_THEN_RANGE | tokens_per_day must be between 0 and 9223372036854775807, or null for no limit
            {"tokens_per_day": 1, "tokens_per_month": 1, "requests_per_minute": 1, "per_hour": 2} | TYPE_THEN_RANGE | unknown field per_hour: limits are tokens_per_day, tokens_per_month, requests_per_minute
            {"tokens_per_day": null, "requests_per_minute": 1}                                    | ONE_SENTENCE    | limits.tokens_per_month is required: a whole number from 0, or null for no limit
            {"tokens_per_day": "5", "tokens_per_month": null, "requests_per_minute": 1}          | ONE_SENTENCE    | limits.tokens_per_day must be a JSON integer from 0 to 9223372036854775807, or null for no limit
            {"tokens_per_day": -1, "tokens_per_month": null, "requests_per_minute": 1}           | ONE_SENTENCE    | limits.tokens_per_day must be a JSON integer from 0 to 9223372036854775807, or null for no limit
            {"per_hour": 2}                                                                       | ONE_SENTENCE    | unknown field limits.per_hour: limits are tokens_per_day, tokens_per_month, requests_per_minute
            """)
    void aBadLimitIsRefusedInTheWordsOfItsEndpoint(String object, LimitRefusal refusal, String detail) {
        // Given limits as the user limits API (the body) or the key API (its "limits" field) receives them
        String path = refusal == LimitRefusal.ONE_SENTENCE ? "limits." : "";

        // When they are read, then the refusal names the field where the caller wrote it
        assertThat(badRequest(() -> RequestValues.limits(json.readTree(object), path, refusal))).isEqualTo(detail);
    }

    @Test
    void limitsAreReadInFullWithNullForNone() {
        var limits = RequestValues.limits(json.readTree("""
                {"requests_per_minute": 0, "tokens_per_month": 9223372036854775807, "tokens_per_day": null}"""),
                "", LimitRefusal.TYPE_THEN_RANGE);

        assertThat(limits).isEqualTo(new RequestValues.Limits(null, Long.MAX_VALUE, 0L));
    }

    @Test
    void aBodyThatIsNoJsonObjectIsRefusedSayingWhatToSend() {
        assertThat(badRequest(() -> RequestValues.jsonObject(null, json, "user_id and name")))
                .isEqualTo("the request body is missing: send a JSON object with user_id and name");
        assertThat(badRequest(() -> RequestValues.jsonObject(bytes("{\"user_id\": "), json, "user_id and name")))
                .isEqualTo("the request body is not valid JSON");
        assertThat(badRequest(() -> RequestValues.jsonObject(bytes("[1, 2]"), json, "user_id and name")))
                .isEqualTo("the request body must be a JSON object with user_id and name");
        assertThat(RequestValues.jsonObject(bytes("{\"user_id\": 7}"), json, "user_id and name").get("user_id").asLong())
                .isEqualTo(7);
    }

    @Test
    void aKeyIdMustBeACanonicalUuidAndALongOneIsEchoedShortened() {
        UUID id = UUID.randomUUID();
        assertThat(RequestValues.uuid("the key id", id.toString().toUpperCase())).isEqualTo(id);
        assertThat(badRequest(() -> RequestValues.uuid("the key id", "1-1-1-1-1")))
                .isEqualTo("the key id must be a UUID, was '1-1-1-1-1'");
        assertThat(badRequest(() -> RequestValues.uuid("the key id", "f".repeat(70))))
                .isEqualTo("the key id must be a UUID, was '" + "f".repeat(64) + "…'");
    }

    @Test
    void aUserIdInABodyIsAJsonIntegerFromOne() {
        assertThat(RequestValues.userId(json.readTree("42"))).isEqualTo(42);
        assertThat(badRequest(() -> RequestValues.userId((JsonNode) null))).isEqualTo("user_id is required");
        assertThat(badRequest(() -> RequestValues.userId(json.readTree("\"42\"")))).isEqualTo("user_id must be a JSON integer");
        assertThat(badRequest(() -> RequestValues.userId(json.readTree("0"))))
                .isEqualTo("user_id must be between 1 and 9223372036854775807");
    }

    @Test
    void anRfc3339TimeNeedsAnOffsetAndAFourDigitYear() {
        assertThat(RequestValues.rfc3339("2027-01-31t00:00:00+01:00")).contains(Instant.parse("2027-01-30T23:00:00Z"));
        assertThat(RequestValues.rfc3339("2027-01-31T00:00:00z")).contains(Instant.parse("2027-01-31T00:00:00Z"));
        assertThat(RequestValues.rfc3339("2027-01-31T00:00:00")).isEmpty();
        assertThat(RequestValues.rfc3339("+12027-01-31T00:00:00Z")).isEmpty();
        assertThat(RequestValues.rfc3339(null)).isEmpty();
    }

    @Test
    void aWindowIsOpenAtAnAbsentEndAndNeverBackwards() {
        assertThat(RequestValues.range(null, " 2026-01-01T00:00:00Z"))
                .isEqualTo(new RequestValues.Range(null, Instant.parse("2026-01-01T00:00:00Z")));
        assertThat(badRequest(() -> RequestValues.range("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z")))
                .isEqualTo("from (2026-01-02T00:00:00Z) must not be after to (2026-01-01T00:00:00Z)");
        assertThat(badRequest(() -> RequestValues.range("yesterday", null)))
                .isEqualTo("from must be an ISO-8601 instant such as 2026-01-31T00:00:00Z, was 'yesterday'");
    }

    @Test
    void aLoneHalfOfASurrogatePairIsNoText() {
        assertThat(RequestValues.hasUnpairedSurrogate("emoji \uD83D\uDE00 fine")).isFalse();
        assertThat(RequestValues.hasUnpairedSurrogate("high \uD83D alone")).isTrue();
        assertThat(RequestValues.hasUnpairedSurrogate("low \uDE00 alone")).isTrue();
        assertThat(RequestValues.hasUnpairedSurrogate("ends high \uD83D")).isTrue();
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static String badRequest(Runnable reading) {
        var refused = new ResponseStatusException[1];
        assertThatThrownBy(reading::run).isInstanceOfSatisfying(ResponseStatusException.class, refusal -> refused[0] = refusal);
        assertThat(refused[0].getStatusCode()).isEqualTo(HttpStatus.BAD_REQUEST);
        return refused[0].getReason();
    }
}
