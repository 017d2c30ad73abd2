package dev.batchgateway;

import org.springframework.boot.SpringApplication;

/**
 * {@code ./mvnw spring-boot:test-run}: the gateway on port 8080 with the simulated worker and a test PostgreSQL
 * (see {@link TestDatabase}), for trying it without installing anything. Environment variables still apply.
 */
public class TestBatchGatewayApplication {

    public static void main(String[] args) {
        defaultTo("gateway.worker.type", "GATEWAY_WORKER_TYPE", "simulated");
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
        String port = gateway.getEnvironment().getProperty("local.server.port");
        System.out.println("""

                Batch Gateway is up with the simulated worker. Try:
                  curl -s localhost:%s/complete -H 'Content-Type: application/json' -d '{"prompt": "hello", "user_id": 42}'
                Stop with Ctrl-C.
                """.formatted(port));
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
