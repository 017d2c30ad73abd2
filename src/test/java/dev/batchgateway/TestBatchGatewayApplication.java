package dev.batchgateway;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.util.Map;
import java.util.UUID;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.context.event.ApplicationEnvironmentPreparedEvent;
import org.springframework.boot.context.properties.source.ConfigurationPropertySources;
import org.springframework.boot.origin.OriginLookup;
import org.springframework.boot.origin.OriginTrackedResource;
import org.springframework.boot.origin.TextResourceOrigin;
import org.springframework.context.ApplicationListener;
import org.springframework.context.support.GenericApplicationContext;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.env.PropertySource;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.springframework.core.io.ClassPathResource;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * {@code ./mvnw spring-boot:test-run}: the gateway on 127.0.0.1:8080 with the simulated worker (and, unless other
 * workers are configured, a simulated embedding model, {@code simulated-embedding}) and a test PostgreSQL of its own
 * (see {@link TestDatabase}), for trying it without installing anything. Environment variables still apply.
 *
 * <p>For the README's examples it seeds a fixed demo key of user 42, {@link #DEMO_KEY}, and sets a fixed admin token,
 * {@link #DEMO_ADMIN_TOKEN}, unless {@code GATEWAY_ADMIN_TOKEN} is set. Both are public, so they stay local: the API
 * listens on 127.0.0.1 unless {@code SERVER_ADDRESS} says otherwise (the management port does by default), the key
 * goes only into the database test-run starts itself, and the packaged jar has neither (this class lives in the test
 * sources). Pointed at any other database, test-run refuses to start.
 */
public class TestBatchGatewayApplication {

    /** The demo key of user 42: public, in the README, for {@code spring-boot:test-run} only. */
    public static final String DEMO_KEY = "bg_DEMO-local-try-it-key-of-user-42-not-secret";
    /** The demo admin token: public, in the README, for {@code spring-boot:test-run} only. */
    public static final String DEMO_ADMIN_TOKEN = "DEMO-local-admin-token-not-secret-try-it-only";
    static final long DEMO_USER = 42;
    private static final String DATASOURCE_URL = "spring.datasource.url";

    public static void main(String[] args) {
        if (System.getenv("GATEWAY_WORKER_TYPE") == null && System.getenv("GATEWAY_MODELS_0_NAME") == null
                && System.getProperty("gateway.worker.type") == null) {
            // the simulated worker, and a simulated embedding model beside it for /v1/embeddings
            System.setProperty("gateway.models[0].name", "simulated-embedding");
            System.setProperty("gateway.models[0].type", "simulated");
            System.setProperty("gateway.models[0].task", "embed");
        }
        defaultTo("gateway.worker.type", "GATEWAY_WORKER_TYPE", "simulated");
        defaultTo("gateway.identity.admin-token", "GATEWAY_ADMIN_TOKEN", DEMO_ADMIN_TOKEN);
        defaultTo("server.address", "SERVER_ADDRESS", "127.0.0.1");
        // the embedded PostgreSQL's own chatter is not the gateway's start-up
        System.setProperty("logging.level.io.zonky", "warn");
        quietEmbeddedPostgres();
        var application = new SpringApplication(BatchGatewayApplication.class);
        application.addListeners(new OwnDatabaseOnly());
        // seeded once the schema exists and before the ports open: a request in between would get 401, and the key
        // cache would remember the key as unknown for seconds after the banner
        application.addInitializers(context -> ((GenericApplicationContext) context).registerBean(
                "demoKeySeed", SmartInitializingSingleton.class,
                () -> () -> seedDemoKey(context.getBean(JdbcClient.class))));
        var gateway = application.run(args);
        String port = gateway.getEnvironment().getProperty("local.server.port");
        String database = gateway.getEnvironment().getProperty(DATASOURCE_URL, "").replaceFirst("\\?.*", "");
        System.out.println("""

                Batch Gateway is up with the simulated worker. Try:
                  curl -s localhost:%s/complete -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"prompt": "hello"}'
                Its own database, which stops with it: %s
                Stop with Ctrl-C.
                """.formatted(port, DEMO_KEY, database));
    }

    /**
     * Once every setting is known (environment, system properties, arguments, configuration files) and before anything
     * connects: refuses a database named anywhere but in the packaged application.yml, then starts test-run's own and
     * points the gateway at it. Seeding the public demo key into a real database would open it to anyone.
     */
    static final class OwnDatabaseOnly implements ApplicationListener<ApplicationEnvironmentPreparedEvent> {

        @Override
        public void onApplicationEvent(ApplicationEnvironmentPreparedEvent event) {
            ConfigurableEnvironment environment = event.getEnvironment();
            String testDatabase = environment.getProperty("TEST_DATABASE_URL");
            if (testDatabase != null && !testDatabase.isBlank()) {
                throw refused("TEST_DATABASE_URL");
            }
            for (PropertySource<?> source : environment.getPropertySources()) {
                if (!ConfigurationPropertySources.isAttachedConfigurationPropertySource(source)
                        && source.containsProperty(DATASOURCE_URL) && !packaged(source)) {
                    throw refused(source instanceof SystemEnvironmentPropertySource
                            ? "SPRING_DATASOURCE_URL" : DATASOURCE_URL + " (in " + source.getName() + ")");
                }
            }
            environment.getPropertySources().addFirst(new MapPropertySource("test-run database", TestDatabase.get().settings()));
        }
    }

    /** Whether the source is a file of the class path: the packaged application.yml, whose database is the default. */
    private static boolean packaged(PropertySource<?> source) {
        return OriginLookup.getOrigin(source, DATASOURCE_URL) instanceof TextResourceOrigin origin
                && origin.getResource() instanceof OriginTrackedResource file
                && file.getResource() instanceof ClassPathResource;
    }

    private static InvalidConfigurationException refused(String setting) {
        return new InvalidConfigurationException("spring-boot:test-run puts its public demo key and admin token only into"
                + " the database it starts itself, and " + setting + " points it at another: unset it, or run the"
                + " packaged jar (bin/batch-gateway) against that database");
    }

    private static void seedDemoKey(JdbcClient jdbc) {
        jdbc.sql("""
                        INSERT INTO api_key (id, digest, prefix, user_id, name)
                        VALUES (?, sha256(convert_to(?, 'UTF8')), ?, ?, 'demo key of spring-boot:test-run, local only')
                        ON CONFLICT (digest) DO NOTHING""")
                .params(UUID.randomUUID(), DEMO_KEY, DEMO_KEY.substring(0, 11), DEMO_USER)
                .update();
        LoggerFactory.getLogger(TestBatchGatewayApplication.class).warn(
                "spring-boot:test-run: the public demo key of user {} and the demo admin token are accepted (README, Keys); "
                        + "never use them outside this local try-it mode", DEMO_USER);
    }

    /** Before Spring configures logging, Logback's default prints every DEBUG line of the database start-up. */
    private static void quietEmbeddedPostgres() {
        if (org.slf4j.LoggerFactory.getILoggerFactory() instanceof ch.qos.logback.classic.LoggerContext logback) {
            logback.getLogger("io.zonky").setLevel(ch.qos.logback.classic.Level.WARN);
        }
    }

    private static void defaultTo(String property, String variable, String value) {
        if (System.getenv(variable) == null && System.getProperty(property) == null) {
            System.setProperty(property, value);
        }
    }
}
