package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.sql.SQLException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/** A database that is away, refuses the password, is missing or cannot be migrated stops start-up in one line. */
@ExtendWith(OutputCaptureExtension.class)
class DatabaseFailureTest {

    private static final String PREFIX = "batch-gateway did not start: ";

    @Test
    void anUnreachableServerIsNamedWithItsVariable(CapturedOutput output) {
        // Given nothing listens where SPRING_DATASOURCE_URL points
        String url = "jdbc:postgresql://127.0.0.1:1/postgres";

        // When the gateway starts, then one line names the server and the variable
        start(url, "postgres", "postgres");
        assertThat(oneLine(output))
                .contains("cannot connect to the database server at " + url + " (SPRING_DATASOURCE_URL)")
                .contains("Start PostgreSQL there");
    }

    @Test
    void aMissingDatabaseIsNamed(CapturedOutput output) {
        // Given a server that answers, but a database name it does not have
        var database = TestDatabase.get();
        String url = inDatabase(database.url(), "no_such_database");

        // When the gateway starts, then one line says the database does not exist
        start(url, database.username(), database.password());
        assertThat(oneLine(output)).contains("database named in SPRING_DATASOURCE_URL").contains("does not exist");
    }

    @Test
    void aFailingMigrationIsNamed(CapturedOutput output) throws SQLException {
        // Given a database whose schema already holds a table Flyway does not know about
        var database = TestDatabase.get();
        String url = inDatabase(database.url(), "foreign_schema");
        try (var admin = DriverManager.getConnection(database.url(), database.username(), database.password());
                var statement = admin.createStatement()) {
            statement.execute("DROP DATABASE IF EXISTS foreign_schema");
            statement.execute("CREATE DATABASE foreign_schema");
        }
        try (var connection = DriverManager.getConnection(url, database.username(), database.password());
                var statement = connection.createStatement()) {
            statement.execute("CREATE TABLE token_usage (something_else text)");
        }

        // When the gateway starts, then one line says the migration failed and where
        start(url, database.username(), database.password(), org.flywaydb.core.api.FlywayException.class);
        assertThat(oneLine(output)).contains("the database migration failed on " + url.replaceAll("\\?.*", ""));
    }

    @Test
    void aRefusedPasswordNamesTheUserButNeverPrintsThePassword(@TempDir Path data, CapturedOutput output)
            throws IOException, SQLException {
        // Given a PostgreSQL that checks passwords
        try (var postgres = EmbeddedPostgres.builder().setDataDirectory(data).setCleanDataDirectory(false).start()) {
            String url = postgres.getJdbcUrl("postgres", "postgres");
            try (var connection = DriverManager.getConnection(url); var statement = connection.createStatement()) {
                statement.execute("ALTER USER postgres PASSWORD 'the-right-one'");
                Files.writeString(data.resolve("pg_hba.conf"), """
                        host all all 127.0.0.1/32 scram-sha-256
                        host all all ::1/128 scram-sha-256
                        """);
                statement.execute("SELECT pg_reload_conf()");
            }

            // When the gateway starts with a wrong password
            start("jdbc:postgresql://localhost:" + postgres.getPort() + "/postgres", "postgres", "Wr0ng-Secret-4711");

            // Then one line names the user and the variables, and the password appears nowhere
            assertThat(oneLine(output)).contains("refused user 'postgres'").contains("SPRING_DATASOURCE_PASSWORD");
            assertThat(output.getAll()).doesNotContain("Wr0ng-Secret-4711");
        }
    }

    private static void start(String url, String username, String password) {
        start(url, username, password, org.postgresql.util.PSQLException.class);
    }

    /** Starts the gateway, which must fail with {@code cause} somewhere in the chain of its failure. */
    private static void start(String url, String username, String password, Class<? extends Throwable> cause) {
        assertThatThrownBy(() -> TestGateway.simulated().onDatabase(url, username, password).start().close()).satisfies(failure -> assertThat(java.util.stream.Stream.iterate(failure, t -> t != null, Throwable::getCause))
                        .hasAtLeastOneElementOfType(cause));
    }

    private static String oneLine(CapturedOutput output) {
        var lines = output.getErr().lines().filter(line -> line.startsWith(PREFIX)).toList();
        assertThat(lines).hasSize(1);
        assertThat(output.getAll()).doesNotContain("\tat ", "APPLICATION FAILED TO START");
        return lines.getFirst();
    }

    private static String inDatabase(String url, String name) {
        return url.replaceFirst("^(jdbc:postgresql://[^/]+/)[^?]*", "$1" + name);
    }
}
