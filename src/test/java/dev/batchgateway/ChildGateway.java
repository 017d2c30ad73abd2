package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * A gateway in a child JVM (the test's own java and class path) on free ports and the test run's database, its output
 * in a file, so that a test can kill it with SIGKILL for real. Ready when {@link #start} returns.
 */
final class ChildGateway implements AutoCloseable {

    /** Generous: a loaded two-core machine starts a gateway in seconds, not a minute. */
    /** Generous: a child JVM started beside other builds on two cores took 95 s to be ready once. */
    static final Duration SLACK = Duration.ofSeconds(180);
    /** The status of a process killed by SIGKILL. */
    static final int KILLED = 137;

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private final String name;
    private final Process process;
    private final GatewayClient client;
    private final Path log;

    private ChildGateway(String name, Process process, GatewayClient client, Path log) {
        this.name = name;
        this.process = process;
        this.client = client;
        this.log = log;
    }

    /**
     * Starts a simulated-worker gateway and waits until it is ready.
     *
     * @param logs where its output goes, as {@code <name>.log}
     * @param journalDirectory its usage journal directory (a new instance on the same one replays what a dead one left)
     * @param settings further command-line settings, {@code --gateway.…=…}
     */
    static ChildGateway start(String name, Path logs, Path journalDirectory, String... settings) throws InterruptedException {
        return start(List.of(), name, logs, journalDirectory, settings);
    }

    /**
     * As {@link #start(String, Path, Path, String...)}, with the process's open-files limit ({@code ulimit -n}) set to
     * {@code openFiles}: sockets, jars and database connections all count against it.
     */
    static ChildGateway startWithOpenFilesLimit(int openFiles, String name, Path logs, Path journalDirectory, String... settings)
            throws InterruptedException {
        return start(List.of("/bin/sh", "-c", "ulimit -n " + openFiles + " && exec \"$@\"", "sh"), name, logs,
                journalDirectory, settings);
    }

    private static ChildGateway start(List<String> launcher, String name, Path logs, Path journalDirectory, String... settings)
            throws InterruptedException {
        // free ports chosen here, not 0: the test's client must know them before the child says anything
        int port = TestGateway.freePort();
        int managementPort = TestGateway.freePort();
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Path log = logs.resolve(name + ".log");
        List<String> command = new ArrayList<>(launcher);
        command.addAll(List.of(
                java.toString(),
                "-XX:TieredStopAtLevel=1",
                "-Xmx512m",
                "-cp", System.getProperty("java.class.path"),
                BatchGatewayApplication.class.getName()));
        command.addAll(TestGateway.simulated()
                .with("server.port", port)
                .with("management.server.port", managementPort)
                .with("gateway.usage.journal-dir", journalDirectory)
                .arguments());
        command.addAll(List.of(settings));
        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        } catch (IOException e) {
            throw new IllegalStateException("could not start the " + name + " gateway", e);
        }
        var gateway = new ChildGateway(name, process, new GatewayClient(port, managementPort), log);
        try {
            gateway.awaitReady();
        } catch (AssertionError | RuntimeException | InterruptedException e) {
            gateway.close();
            throw e;
        }
        return gateway;
    }

    Process process() {
        return process;
    }

    GatewayClient client() {
        return client;
    }

    /** SIGKILL; returns once the process is gone. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        assertThat(process.waitFor(SLACK.toSeconds(), TimeUnit.SECONDS)).as("the killed " + name + " gateway ended").isTrue();
        assertThat(process.exitValue()).as("exit status of the " + name + " gateway after SIGKILL").isEqualTo(KILLED);
    }

    /** SIGTERM (a graceful shutdown); returns once the process is gone. */
    void stop() throws InterruptedException {
        process.destroy();
        assertThat(process.waitFor(SLACK.toSeconds(), TimeUnit.SECONDS)).as("the " + name + " gateway stopped").isTrue();
    }

    /** Kills it if it still runs: for a test's clean-up. */
    @Override
    public void close() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** The last lines of its output. */
    String tail() {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
        } catch (IOException e) {
            return "(unreadable: " + e + ")";
        }
    }

    private void awaitReady() throws InterruptedException {
        URI readiness = client.uri("/actuator/health/readiness");
        awaitCondition("the " + name + " gateway ready (its output: " + log + ")", SLACK, () -> {
            assertThat(process.isAlive()).as("the " + name + " gateway is running; its output:\n" + tail()).isTrue();
            try {
                return HTTP.send(HttpRequest.newBuilder(readiness).timeout(Duration.ofSeconds(5)).build(),
                        HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
            } catch (IOException notYet) {
                return false;
            }
        });
    }

    /** A condition that may throw {@link InterruptedException}. */
    @FunctionalInterface
    interface Condition {
        boolean holds() throws InterruptedException;
    }

    /** Polls the condition every 50 ms until it holds; fails, saying how long it waited, after {@code atMost}. */
    static void awaitCondition(String what, Duration atMost, Condition condition) throws InterruptedException {
        awaitCondition(() -> what, atMost, condition);
    }

    /** As {@link #awaitCondition(String, Duration, Condition)}, with what was awaited told as it stands at the failure. */
    static void awaitCondition(Supplier<String> what, Duration atMost, Condition condition) throws InterruptedException {
        long started = System.nanoTime();
        while (!condition.holds()) {
            long waited = System.nanoTime() - started;
            assertThat(waited).as(() -> String.format("waited %.1f s for %s, expected at most %d s", waited / 1e9, what.get(),
                            atMost.toSeconds()))
                    .isLessThan(atMost.toNanos());
            Thread.sleep(50); // the poll's period, not a synchronisation
        }
    }

    /** {@link #awaitCondition(String, Duration, Condition)} for a condition that cannot be interrupted. */
    static void awaitCondition(String what, BooleanSupplier condition) throws InterruptedException {
        awaitCondition(what, SLACK, condition::getAsBoolean);
    }

}
