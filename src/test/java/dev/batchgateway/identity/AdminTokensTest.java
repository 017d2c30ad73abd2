package dev.batchgateway.identity;

import static org.assertj.core.api.Assertions.assertThat;

import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The admin tokens: any printable ASCII presented as a bearer token, several at once, each with an id that is not secret. */
class AdminTokensTest {

    private static final String OLD = "an-admin-token-of-at-least-32-characters";
    private static final String NEW = "the new admin token! with spaces, #$%&*+/=?^_{|}~";
    /** Every printable ASCII character, space, '!', '"' and '\' included. */
    private static final String EVERY_PRINTABLE = IntStream.rangeClosed(0x21, 0x7e)
            .mapToObj(c -> String.valueOf((char) c)).collect(Collectors.joining(" "));

    private final Callers callers = new Callers(keys(), new AdminTokens(List.of(OLD, NEW, EVERY_PRINTABLE)), true);

    @Test
    void anyPrintableTokenIsPresentedAsABearerToken() {
        // RFC 6750's token characters alone once made a token with '!' or a space impossible to present
        for (String token : List.of(OLD, NEW, EVERY_PRINTABLE)) {
            assertThat(callers.identify("Bearer " + token)).as(token).isInstanceOf(Caller.Operator.class);
            assertThat(callers.identify("bearer   " + token + "  ")).as("scheme case and spaces around, as HTTP allows")
                    .isInstanceOf(Caller.Operator.class);
        }
        for (String header : new String[] {"Bearer " + NEW.replace(" ", "  "), "Bearer " + NEW.replace(" ", ""),
                "Bearer " + NEW + "!", "Bearer" + NEW, NEW, "Basic " + NEW, "Bearer " + NEW.toUpperCase(),
                "Bearer " + EVERY_PRINTABLE.replace(" ", "")}) {
            assertThat(callers.identify(header)).as(header).isEqualTo(new Caller.Anonymous());
        }
    }

    @Test
    void eachTokenHasTheIdOfItsDigestsFirstEightHexDigits() {
        var tokens = new AdminTokens(List.of(OLD, NEW, OLD));

        // printf %s "$TOKEN" | sha256sum | cut -c1-8, as docs/security.md tells the operator
        assertThat(tokens.idOf(OLD)).hasValue("80f22b2d");
        assertThat(tokens.idOf(NEW)).hasValue("701b58cf");
        assertThat(tokens.ids()).as("the same token twice counts once").containsExactly("80f22b2d", "701b58cf");
        assertThat(tokens.idOf(OLD + " ")).isEmpty();
        assertThat(tokens.idOf(null)).isEmpty();
        assertThat(callers.identify("Bearer " + NEW)).isEqualTo(new Caller.Operator("701b58cf"));
        assertThat(callers.identify("Bearer bg_" + "A".repeat(43))).isNotInstanceOf(Caller.Operator.class);
        assertThat(tokens.toString()).doesNotContain(OLD).doesNotContain(NEW).contains("80f22b2d");
    }

    @Test
    void noTokenMeansTheAdminApiIsDisabled() {
        assertThat(AdminTokens.none().isEmpty()).isTrue();
        assertThat(AdminTokens.none().matches("")).isFalse();
        assertThat(new Callers(keys(), AdminTokens.none(), true).identify("Bearer " + OLD)).isEqualTo(new Caller.Anonymous());
    }

    /** Keys in memory, none issued: whatever is presented here is an admin token or nothing. */
    private static ApiKeys keys() {
        var clock = new ManualClock();
        return new ApiKeys(new MemoryKeyStore(), clock, clock, Runnable::run, new SecureRandom(), new ApiKeys.Caching(
                Duration.ofSeconds(2), Duration.ofSeconds(30), Duration.ofSeconds(1), Duration.ofSeconds(1), 100, 100, 8),
                Duration.ofSeconds(10));
    }
}
