package dev.batchgateway;

import java.util.UUID;
import org.slf4j.LoggerFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * {@code ./mvnw spring-boot:test-run}: the gateway on port 8080 with the simulated worker and a test PostgreSQL
 * (see {@link TestDatabase}), for trying it without installing anything. Environment variables still apply.
 *
 * <p>For the README's examples it seeds a fixed demo key of user 42, {@link #DEMO_KEY}, and sets a fixed admin token,
 * {@link #DEMO_ADMIN_TOKEN}, unless {@code GATEWAY_ADMIN_TOKEN} is set. Both are public and local only: this class lives
 * in the test sources, and the packaged jar has neither.
 */
public class TestBatchGatewayApplication {

    /** The demo key of user 42: public, in the README, for {@code spring-boot:test-run} only. */
    public static final String DEMO_KEY = "bg_DEMO-local-try-it-key-of-user-42-not-secret";
    /** The demo admin token: public, in the README, for {@code spring-boot:test-run} only. */
    public static final String DEMO_ADMIN_TOKEN = "DEMO-local-admin-token-not-secret-try-it-only";
    static final long DEMO_USER = 42;

    public static void main(String[] args) {
        defaultTo("gateway.worker.type", "GATEWAY_WORKER_TYPE", "simulated");
        defaultTo("gateway.identity.admin-token", "GATEWAY_ADMIN_TOKEN", DEMO_ADMIN_TOKEN);
        // the embedded PostgreSQL's own chatter is not the gateway's start-up
        System.setProperty("logging.level.io.zonky", "warn");
        quietEmbeddedPostgres();
        if (System.getenv("SPRING_DATASOURCE_URL") == null && System.getProperty("spring.datasource.url") == null) {
            var database = TestDatabase.get();
            System.setProperty("spring.datasource.url", database.url());
            System.setProperty("spring.datasource.username", database.username());
            System.setProperty("spring.datasource.password", database.password());
        }
        var gateway = SpringApplication.from(BatchGatewayApplication::main).run(args).getApplicationContext();
        seedDemoKey(gateway.getBean(JdbcClient.class));
        String port = gateway.getEnvironment().getProperty("local.server.port");
        System.out.println("""

                Batch Gateway is up with the simulated worker. Try:
                  curl -s localhost:%s/complete -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"prompt": "hello"}'
                Stop with Ctrl-C.
                """.formatted(port, DEMO_KEY));
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
