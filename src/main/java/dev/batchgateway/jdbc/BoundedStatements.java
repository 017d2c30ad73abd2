package dev.batchgateway.jdbc;

import java.sql.SQLException;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.function.Function;
import org.springframework.jdbc.core.ConnectionCallback;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.SingleConnectionDataSource;

/**
 * Statements that wait at most {@code timeout} for PostgreSQL's answer, well below the pool's socket timeout: a database
 * cut off by a black-holing network never answers, and a write on the answer's path must give up in time. Past the
 * timeout the driver closes the connection (the pool drops it) and the statement may still commit on the server, so
 * what runs here must be idempotent or resolved by reading back, never sent again blind.
 */
public final class BoundedStatements {

    private final JdbcTemplate template;
    private final Duration timeout;
    /** Runs the driver's abort of a connection whose statement timed out. */
    private final Executor aborts = Executors.newVirtualThreadPerTaskExecutor();

    public BoundedStatements(JdbcTemplate template, Duration timeout) {
        this.template = Objects.requireNonNull(template, "template");
        if (timeout == null || !timeout.isPositive()) {
            throw new IllegalArgumentException("a statement timeout must be positive, was " + timeout);
        }
        this.timeout = timeout;
    }

    /** Runs the statement on one connection of the pool whose answer is awaited at most the timeout. */
    public <T> T run(Function<JdbcClient, T> statement) {
        return template.execute((ConnectionCallback<T>) connection -> {
            int before = connection.getNetworkTimeout();
            connection.setNetworkTimeout(aborts, Math.toIntExact(timeout.toMillis()));
            try {
                return statement.apply(JdbcClient.create(new SingleConnectionDataSource(connection, true)));
            } finally {
                try {
                    connection.setNetworkTimeout(aborts, before);
                } catch (SQLException closed) {
                    // the driver closed it when the statement timed out (the pool drops it): that failure is the one told
                }
            }
        });
    }
}
