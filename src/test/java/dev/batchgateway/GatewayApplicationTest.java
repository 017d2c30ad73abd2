package dev.batchgateway;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.Tag;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.context.ApplicationContextInitializer;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.core.annotation.AliasFor;
import org.springframework.core.env.Environment;
import org.springframework.core.env.MapPropertySource;
import org.springframework.test.context.ContextConfiguration;
import org.springframework.test.context.TestPropertySource;

/**
 * The whole gateway on a random port (and a random management port) against the shared test database, with API keys
 * on and the test admin token, so that {@link GatewayClient} can mint a key for each user it calls as. A test adds
 * only its own settings in {@link #properties()}, and gets a client of the running gateway with
 * {@code @Autowired GatewayClient gateway}.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Documented
@Inherited
@Tag(TestDatabase.TAG)
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
@ContextConfiguration(initializers = GatewayApplicationTest.Database.class)
@Import(GatewayApplicationTest.Client.class)
@TestPropertySource(properties = {
        "gateway.identity.mode=api-keys",
        "gateway.identity.admin-token=" + GatewayApplicationTest.ADMIN_TOKEN,
        "gateway.identity.admin-tokens=" + GatewayApplicationTest.ROTATED_ADMIN_TOKEN,
        "management.server.port=0"})
public @interface GatewayApplicationTest {

    /** The admin token of every whole-application test; the admin API mints the test users' keys with it. */
    String ADMIN_TOKEN = "test-admin-token-0123456789abcdef-0123456789";

    /**
     * A second admin token, in GATEWAY_ADMIN_TOKENS (as while the first is rotated out), of characters beyond RFC 6750's
     * token characters: spaces, '!', quotes, '#', ':', '='.
     */
    String ROTATED_ADMIN_TOKEN = "the next admin token! \"rotated\" #1: a=b & c;d <e> @f (g) [h] {i} |j| ~k^ `l` ?m";

    /** This test's own settings, as {@code key=value}. */
    @AliasFor(annotation = SpringBootTest.class, attribute = "properties")
    String[] properties() default {};

    /** A {@link GatewayClient} of the gateway under test; its ports are read when it calls, once the server runs. */
    @TestConfiguration
    class Client {
        @Bean
        GatewayClient gatewayClient(Environment environment) {
            return new GatewayClient(() -> environment.getRequiredProperty("local.server.port", Integer.class),
                    () -> environment.getProperty("local.management.port", Integer.class, -1));
        }
    }

    /** Points the data source at {@link TestDatabase}, started on first use and shared by the whole test run. */
    final class Database implements ApplicationContextInitializer<ConfigurableApplicationContext> {
        @Override
        public void initialize(ConfigurableApplicationContext context) {
            context.getEnvironment().getPropertySources().addFirst(new MapPropertySource("test-database",
                    TestDatabase.get().settings()));
        }
    }
}
