package dev.batchgateway;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.postgresql.PostgreSQLContainer;

/**
 * A real PostgreSQL for tests, shared by the whole test run: the one at {@code TEST_DATABASE_URL} if set
 * (with {@code TEST_DATABASE_USERNAME}/{@code _PASSWORD}, default postgres/postgres), else a Testcontainers
 * PostgreSQL when Docker answers, else an embedded PostgreSQL run from Maven-provided binaries.
 */
public final class TestDatabase {

    /**
     * The JUnit tag of test classes that run against this database (seconds each): the mutation profile leaves them out,
     * since every mutant would rerun them; the plain verify runs them.
     */
    public static final String TAG = "database";

    public record Coordinates(String url, String username, String password) {

        /** As Spring's data source settings. */
        public Map<String, Object> settings() {
            return Map.of("spring.datasource.url", url, "spring.datasource.username", username, "spring.datasource.password",
                    password);
        }
    }

    private static Coordinates shared;
    private static EmbeddedPostgres embedded;

    private TestDatabase() {}

    public static synchronized Coordinates get() {
        if (shared == null) {
            shared = start();
            // every gateway of this run that is not told otherwise journals here (a system property outranks application.yml)
            if (System.getProperty("gateway.usage.journal-dir") == null) {
                System.setProperty("gateway.usage.journal-dir", journalDirectory().toString());
            }
        }
        return shared;
    }

    /**
     * A PostgreSQL of the test's own (user and password postgres) at this port, its data in this directory: a test can
     * close it for an outage and start it again with its data. {@link TestGateway#onDatabaseAt} points a gateway at it.
     */
    public static EmbeddedPostgres startOwn(int port, Path dataDirectory) throws IOException {
        return EmbeddedPostgres.builder()
                .setPort(port)
                .setDataDirectory(dataDirectory)
                .setCleanDataDirectory(false)
                .start();
    }

    /** Points Spring's data source at the shared test database. */
    public static void register(DynamicPropertyRegistry registry) {
        registry.add("spring.datasource.url", () -> get().url());
        registry.add("spring.datasource.username", () -> get().username());
        registry.add("spring.datasource.password", () -> get().password());
    }

    private static Path journalDirectory;

    /**
     * The usage journals of this test run's gateways: a directory of this JVM's own, so that no test adopts (and replays
     * into its database) the journal another build on the same machine left behind.
     */
    public static synchronized Path journalDirectory() {
        if (journalDirectory == null) {
            try {
                journalDirectory = Files.createTempDirectory("usage-journal-");
            } catch (IOException e) {
                throw new UncheckedIOException("could not create a directory for the usage journals", e);
            }
        }
        return journalDirectory;
    }

    /**
     * Asks Testcontainers only where a Docker engine can be: without one, its probe logs an ERROR and JNA warnings that
     * alarm whoever tries the gateway.
     */
    private static boolean dockerMayAnswer() {
        return System.getenv("DOCKER_HOST") != null
                || Files.exists(Path.of("/var/run/docker.sock"))
                || Files.exists(Path.of(System.getProperty("user.home"), ".docker", "run", "docker.sock"))
                || Files.exists(Path.of(System.getProperty("user.home"), ".testcontainers.properties"));
    }

    private static Coordinates start() {
        String url = System.getenv("TEST_DATABASE_URL");
        if (url != null && !url.isBlank()) {
            return new Coordinates(url, env("TEST_DATABASE_USERNAME", "postgres"), env("TEST_DATABASE_PASSWORD", "postgres"));
        }
        if (dockerMayAnswer() && DockerClientFactory.instance().isDockerAvailable()) {
            var container = new PostgreSQLContainer("postgres:17-alpine");
            container.start();
            return new Coordinates(container.getJdbcUrl(), container.getUsername(), container.getPassword());
        }
        try {
            embedded = EmbeddedPostgres.builder().setRegisterShutdownHook(false).start();
            Runtime.getRuntime().addShutdownHook(new Thread(TestDatabase::stopAfterTheGateways, "test-database-stop"));
            return new Coordinates(embedded.getJdbcUrl("postgres", "postgres"), "postgres", "postgres");
        } catch (IOException e) {
            throw new UncheckedIOException("could not start an embedded PostgreSQL", e);
        }
    }

    /**
     * Stops the embedded PostgreSQL when the JVM ends, once Spring Boot's shutdown hook (if a gateway ran) has closed the
     * test run's gateways: stopped beside it (the library's own hook), every gateway still closing waited out its
     * connection timeout, and the test JVM outlived Surefire's 30 s. The JVM starts all its hooks at once; Spring Boot's
     * is waited for by its thread's name. Without one (the benchmarks' standalone database) it stops at once.
     */
    private static void stopAfterTheGateways() {
        try {
            Thread.sleep(100); // the hooks are all started by now
            for (Thread thread : Thread.getAllStackTraces().keySet()) {
                if (thread.getName().equals("SpringApplicationShutdownHook")) {
                    thread.join(Duration.ofSeconds(20));
                }
            }
        } catch (InterruptedException ignored) {
            // stop now
        }
        try {
            embedded.close();
        } catch (IOException ignored) {
            // the JVM is ending; the server's directory is temporary
        }
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }
}
