package dev.batchgateway;

import org.springframework.boot.SpringApplication;

/**
 * {@code ./mvnw spring-boot:test-run}: the gateway on port 8080 with the simulated worker and a test PostgreSQL
 * (see {@link TestDatabase}), for trying it without installing anything. Environment variables still apply.
 */
public class TestBatchGatewayApplication {

    public static void main(String[] args) {
        defaultTo("gateway.worker.type", "GATEWAY_WORKER_TYPE", "simulated");
        if (System.getenv("SPRING_DATASOURCE_URL") == null && System.getProperty("spring.datasource.url") == null) {
            var database = TestDatabase.get();
            System.setProperty("spring.datasource.url", database.url());
            System.setProperty("spring.datasource.username", database.username());
            System.setProperty("spring.datasource.password", database.password());
        }
        SpringApplication.from(BatchGatewayApplication::main).run(args);
    }

    private static void defaultTo(String property, String variable, String value) {
        if (System.getenv(variable) == null && System.getProperty(property) == null) {
            System.setProperty(property, value);
        }
    }
}
