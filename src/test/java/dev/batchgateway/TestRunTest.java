package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code ./mvnw spring-boot:test-run} ({@link TestBatchGatewayApplication}) in a child JVM, as a developer runs it: its
 * demo key and admin token are public, so it listens on the loopback interface only and puts them only into the
 * database it starts itself.
 */
class TestRunTest {

    /** Generous: a loaded two-core machine starts a JVM in seconds, an embedded PostgreSQL and a gateway in tens of them. */
    private static final Duration SLACK = Duration.ofSeconds(180);
    private static final String PRODUCTION = "jdbc:postgresql://db.internal:5432/production";

    @TempDir
    Path directory;

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            SPRING_DATASOURCE_URL                      | SPRING_DATASOURCE_URL |
            TEST_DATABASE_URL                          | TEST_DATABASE_URL     |
            spring.datasource.url (in commandLineArgs) |                       | --spring.datasource.url
            """)
    void pointedAtAnotherDatabaseItRefusesToStartInOneLineSayingWhy(String named, String variable, String argument)
            throws Exception {
        // Given test-run pointed at another database, by an environment variable or an argument
        Map<String, String> environment = variable == null ? Map.of() : Map.of(variable, PRODUCTION);
        List<String> arguments = argument == null ? List.of() : List.of(argument + "=" + PRODUCTION);

        // When it starts
        Process testRun = start(environment, arguments);
        boolean ended = testRun.waitFor(SLACK.toSeconds(), TimeUnit.SECONDS);
        testRun.destroyForcibly();

        // Then it stops, saying why in one line on stderr, before it served anything
        assertThat(ended).as("test-run stopped within %d s; its output:%n%s", SLACK.toSeconds(), output()).isTrue();
        assertThat(testRun.exitValue()).as("exit code").isNotZero();
        assertThat(read("stderr").lines().filter(line -> !line.isBlank()).toList()).singleElement().asString()
                .startsWith("batch-gateway did not start: spring-boot:test-run puts its public demo key and admin token"
                        + " only into the database it starts itself, and " + named + " points it at another");
        assertThat(read("stdout")).doesNotContain("Batch Gateway is up").doesNotContain("db.internal");
    }

    @Test
    void itListensOnTheLoopbackAddressOnlyAndServesTheDemoKeyFromItsOwnDatabase() throws Exception {
        // Given test-run started as the README says, on free ports
        int port = TestGateway.freePort();
        int managementPort = TestGateway.freePort();
        Process testRun = start(Map.of("SERVER_PORT", String.valueOf(port), "MANAGEMENT_SERVER_PORT", String.valueOf(managementPort),
                "GATEWAY_USAGE_JOURNAL_DIR", directory.resolve("journal").toString()), List.of());
        var http = HttpClient.newHttpClient();
        try {
            // When a client tries the demo key from the moment the port accepts connections
            HttpResponse<String> first = null;
            while (first == null) {
                assertThat(testRun.isAlive()).as("test-run is running; its output:%n%s", output()).isTrue();
                try {
                    first = complete(http, port);
                } catch (java.net.ConnectException notYetListening) {
                    Thread.sleep(5);
                }
            }
            // Then its very first request is served: the key is in the database before the port opens
            assertThat(first.statusCode()).as("the first request's answer: %s", first.body()).isEqualTo(200);
            ChildGateway.awaitCondition(() -> "test-run up; its output:\n" + output(), SLACK, () -> {
                assertThat(testRun.isAlive()).as("test-run is running; its output:%n%s", output()).isTrue();
                return read("stdout").contains("Batch Gateway is up");
            });

            // Then both its ports answer on 127.0.0.1 and on no other address (127.0.0.2: Linux's loopback too,
            // where a port bound to all interfaces would answer, as on the machine's network address)
            for (int listening : List.of(port, managementPort)) {
                assertThat(GatewayClient.accepts("127.0.0.1", listening)).as("port %d on 127.0.0.1", listening).isTrue();
                assertThat(GatewayClient.accepts("127.0.0.2", listening)).as("port %d on 127.0.0.2", listening).isFalse();
            }

            // And the README's demo key and admin token work there
            var completed = complete(http, port);
            assertThat(completed.statusCode()).as(completed.body()).isEqualTo(200);
            assertThat(completed.body()).contains("\"completion\":\"fox brown quick the\"");
            var keys = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/admin/keys?user_id=42"))
                    .header("Authorization", "Bearer " + TestBatchGatewayApplication.DEMO_ADMIN_TOKEN).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(keys.statusCode()).as(keys.body()).isEqualTo(200);

            // When it is stopped as Ctrl-C would (SIGTERM: the JVM runs its shutdown hooks, as on SIGINT)
            Matcher database = Pattern.compile("Its own database, which stops with it: jdbc:postgresql://([^:/]+):(\\d+)/")
                    .matcher(read("stdout"));
            assertThat(database.find()).as("test-run names its database; its output:%n%s", output()).isTrue();
            String host = database.group(1);
            int databasePort = Integer.parseInt(database.group(2));
            assertThat(GatewayClient.accepts(host, databasePort)).as("its database at %s:%d", host, databasePort).isTrue();
            testRun.destroy();

            // Then it ends, and its own PostgreSQL with it: nothing is left running (the test once killed it, -9, and
            // left a PostgreSQL behind in every build)
            assertThat(testRun.waitFor(SLACK.toSeconds(), TimeUnit.SECONDS))
                    .as("test-run ended on SIGTERM; its output:%n%s", output()).isTrue();
            ChildGateway.awaitCondition("its database at " + host + ":" + databasePort + " to stop", SLACK,
                    () -> !GatewayClient.accepts(host, databasePort));
        } finally {
            testRun.destroyForcibly(); // a test that failed above: not left running
            testRun.waitFor(30, TimeUnit.SECONDS);
        }
    }

    private static HttpResponse<String> complete(HttpClient http, int port) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/complete"))
                        .header("Authorization", "Bearer " + TestBatchGatewayApplication.DEMO_KEY)
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"the quick brown fox\"}")).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** TestBatchGatewayApplication in a child JVM (the test's own java and class path), its output in this test's directory. */
    private Process start(Map<String, String> environment, List<String> arguments) throws IOException {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:TieredStopAtLevel=1",
                "-Xmx512m",
                "-cp", System.getProperty("java.class.path"),
                TestBatchGatewayApplication.class.getName()));
        command.addAll(arguments);
        var process = new ProcessBuilder(command)
                .redirectOutput(directory.resolve("stdout").toFile())
                .redirectError(directory.resolve("stderr").toFile());
        // as a developer's shell would have it: none of the settings this test is about, unless it gives them
        for (String setting : List.of("SPRING_DATASOURCE_URL", "TEST_DATABASE_URL", "SERVER_ADDRESS", "MANAGEMENT_SERVER_ADDRESS",
                "GATEWAY_ADMIN_TOKEN", "GATEWAY_ADMIN_TOKENS", "SPRING_APPLICATION_JSON")) {
            process.environment().remove(setting);
        }
        process.environment().put("GATEWAY_LOG_FORMAT", "");
        process.environment().putAll(environment);
        return process.start();
    }

    private String output() {
        return read("stdout") + "\n--- stderr\n" + read("stderr");
    }

    private String read(String stream) {
        try {
            Path file = directory.resolve(stream);
            return Files.exists(file) ? Files.readString(file) : "";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
