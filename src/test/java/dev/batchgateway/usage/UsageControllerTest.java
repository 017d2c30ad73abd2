package dev.batchgateway.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.batchgateway.budget.Budgets;
import dev.batchgateway.budget.Limits;
import dev.batchgateway.budget.MemoryBudgetStore;
import dev.batchgateway.identity.AdminTokens;
import dev.batchgateway.identity.Caller;
import dev.batchgateway.identity.Callers;
import dev.batchgateway.identity.NotAllowedException;
import dev.batchgateway.identity.NotAuthenticatedException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.springframework.dao.DataAccessResourceFailureException;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.web.ErrorResponseException;
import org.springframework.web.server.ResponseStatusException;

/** The controller's own checks of a usage query, without HTTP: what it passes on, and what it refuses with which words. */
class UsageControllerTest {

    private final List<String> asked = new ArrayList<>();
    private final JdbcUsageTotals totals = new JdbcUsageTotals(null) {
        @Override
        UsageTotals totals(long user, Instant from, Instant to) {
            asked.add(user + " " + from + " " + to);
            return UsageTotals.of(user, Map.of());
        }
    };
    private final UsageController controller = new UsageController(totals, new Callers(null, AdminTokens.none(), false), unlimited());
    private final Caller trusted = new Caller.Trusted();

    @Test
    void theSmallestUserAndTheWidestWindowArePassedOnAsGiven() {
        controller.usage(trusted, "1", "0001-01-01T00:00:00Z", " 9999-12-31T23:59:59.999999Z ", null);
        controller.usage(trusted, "9223372036854775807", null, null, null);
        controller.usage(trusted, "7", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", null);

        assertThat(asked).containsExactly(
                "1 0001-01-01T00:00:00Z 9999-12-31T23:59:59.999999Z",
                "9223372036854775807 null null",
                "7 2026-01-01T00:00:00Z 2026-01-01T00:00:00Z");
    }

    @Test
    void aBadUserIdIsEchoedWholeUpTo64CharactersAndCutAfter() {
        String sixtyFour = "x".repeat(64);
        assertThat(badRequest(() -> controller.usage(trusted, sixtyFour, null, null, null)))
                .isEqualTo("user_id must be an integer from 1 to 9223372036854775807, was '" + sixtyFour + "'");
        assertThat(badRequest(() -> controller.usage(trusted, sixtyFour + "yz", null, null, null)))
                .isEqualTo("user_id must be an integer from 1 to 9223372036854775807, was '" + sixtyFour + "…'");
        assertThat(badRequest(() -> controller.usage(trusted, "0", null, null, null)))
                .isEqualTo("user_id must be an integer from 1 to 9223372036854775807, was '0'");
        assertThat(asked).isEmpty();
    }

    @Test
    void boundsJustOutsideTheStorableYearsAreRefused() {
        assertThat(badRequest(() -> controller.usage(trusted, "1", "0000-12-31T23:59:59.999999999Z", null, null)))
                .isEqualTo("from must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, was 0000-12-31T23:59:59.999999999Z");
        assertThat(badRequest(() -> controller.usage(trusted, "1", null, "9999-12-31T23:59:59.999999001Z", null)))
                .isEqualTo("to must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, was 9999-12-31T23:59:59.999999001Z");
        assertThat(badRequest(() -> controller.usage(trusted, "1", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", null)))
                .isEqualTo("from (2026-01-02T00:00:00Z) must not be after to (2026-01-01T00:00:00Z)");
        assertThat(asked).isEmpty();
    }

    @Test
    void aDatabaseThatIsAwayIsA503WithRetryAfter() {
        var away = new UsageController(new JdbcUsageTotals(null) {
            @Override
            UsageTotals totals(long user, Instant from, Instant to) {
                throw new DataAccessResourceFailureException("connection refused");
            }
        }, new Callers(null, AdminTokens.none(), false), unlimited());

        assertThatThrownBy(() -> away.usage(trusted, "1", null, null, null))
                .isInstanceOfSatisfying(ErrorResponseException.class, unavailable -> {
                    assertThat(unavailable.getStatusCode()).isEqualTo(HttpStatus.SERVICE_UNAVAILABLE);
                    assertThat(unavailable.getHeaders().getFirst(HttpHeaders.RETRY_AFTER)).isEqualTo("5");
                    assertThat(unavailable.getBody().getDetail()).isEqualTo("the usage database is unavailable; try again later");
                });
    }

    @Test
    void onlyAKnownCallerMayReadAndAUsersKeyOnlyItsOwnUsage() {
        assertThatThrownBy(() -> controller.usage(new Caller.Anonymous(), "1", null, null, null))
                .isInstanceOf(NotAuthenticatedException.class);
        assertThatThrownBy(() -> controller.usage(new Caller.User(2, UUID.randomUUID()), "1", null, null, null))
                .isInstanceOf(NotAllowedException.class);
        controller.usage(new Caller.User(1, UUID.randomUUID()), "1", null, null, null);

        assertThat(asked).containsExactly("1 null null");
    }

    private static String badRequest(Runnable call) {
        try {
            call.run();
        } catch (ResponseStatusException e) {
            assertThat(e.getStatusCode()).isEqualTo(HttpStatus.BAD_REQUEST);
            return e.getReason();
        }
        throw new AssertionError("the query was taken");
    }

    /** Budgets without limits, on a store in memory: this test is about the controller's own checks. */
    private static Budgets unlimited() {
        return new Budgets(new MemoryBudgetStore(), Limits.NONE, Clock.systemUTC(), Budgets.Timing.DEFAULT);
    }
}
