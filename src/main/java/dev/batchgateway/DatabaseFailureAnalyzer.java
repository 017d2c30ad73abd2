package dev.batchgateway;

import java.sql.SQLException;
import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.boot.diagnostics.FailureAnalyzer;
import org.springframework.core.Ordered;
import org.springframework.core.env.Environment;

/**
 * Turns the database failures of start-up (server away, password refused, database missing, a migration that fails)
 * into one line naming the server and the variable to fix, instead of a pool-and-Flyway stack trace. Never prints the
 * password: only the URL up to its query string and the user name.
 */
class DatabaseFailureAnalyzer implements FailureAnalyzer, Ordered {

    private final Environment environment;

    DatabaseFailureAnalyzer(Environment environment) {
        this.environment = environment;
    }

    @Override
    public FailureAnalysis analyze(Throwable failure) {
        SQLException sql = find(failure, SQLException.class);
        String state = sql == null || sql.getSQLState() == null ? "" : sql.getSQLState();
        String server = server();
        if (state.startsWith("08")) {
            return analysis("cannot connect to the database server at " + server + " (SPRING_DATASOURCE_URL).",
                    "Start PostgreSQL there, or set SPRING_DATASOURCE_URL to where it runs.");
        }
        if (state.equals("28P01") || state.equals("28000")) {
            return analysis("the database server at " + server + " refused user '" + user()
                            + "' (SPRING_DATASOURCE_USERNAME / SPRING_DATASOURCE_PASSWORD).",
                    "Set SPRING_DATASOURCE_USERNAME and SPRING_DATASOURCE_PASSWORD to an account of that server.");
        }
        if (state.equals("3D000")) {
            return analysis("the database named in SPRING_DATASOURCE_URL (" + server + ") does not exist.",
                    "Create it (createdb) or point SPRING_DATASOURCE_URL at an existing database.");
        }
        Throwable flyway = findByPackage(failure, "org.flywaydb.");
        if (flyway != null) {
            return analysis("the database migration failed on " + server + ": " + firstLine(flyway.getMessage()),
                    "Fix the schema or the migration (src/main/resources/db/migration) and start again.");
        }
        return null;
    }

    private String server() {
        String url = environment.getProperty("spring.datasource.url", "(SPRING_DATASOURCE_URL not set)");
        int query = url.indexOf('?');
        return query < 0 ? url : url.substring(0, query);
    }

    private String user() {
        return environment.getProperty("spring.datasource.username", "");
    }

    private static FailureAnalysis analysis(String description, String action) {
        return new FailureAnalysis(description, action, null);
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "";
        }
        return message.strip().lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("-")).findFirst().orElse("");
    }

    private static <T extends Throwable> T find(Throwable failure, Class<T> type) {
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            if (type.isInstance(cause)) {
                return type.cast(cause);
            }
        }
        return null;
    }

    private static Throwable findByPackage(Throwable failure, String packagePrefix) {
        Throwable found = null;
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            if (cause.getClass().getName().startsWith(packagePrefix)) {
                found = cause;
            }
        }
        return found;
    }

    @Override
    public int getOrder() {
        return Ordered.HIGHEST_PRECEDENCE;
    }
}
