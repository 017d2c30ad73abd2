package dev.batchgateway.worker;

import java.time.Duration;
import java.util.Optional;

/**
 * How long the JDK's HTTP client keeps idle worker connections: {@code jdk.httpclient.keepalive.timeout} seconds (30
 * unset). They must close before the server closes them itself (vLLM's uvicorn and llama.cpp's server do after 5 s),
 * hence {@code GATEWAY_WORKER_IDLE_TIMEOUT} (4s). The JDK has no per-client setting for it ({@code HttpClient.Builder}
 * has none): it reads the system property once, into a static final of {@code jdk.internal.net.http.HttpClientImpl},
 * when the first client of the JVM is built. So the gateway does not write it: the launchers ({@code bin/batch-gateway},
 * which the Dockerfile and the systemd unit run) put it on the java command line from {@code
 * GATEWAY_WORKER_IDLE_TIMEOUT}, and the gateway says at start-up when the JVM it runs in keeps connections longer.
 *
 * <p>A close by the server that arrives while a connection is idle takes it out of the JDK's pool before any call is
 * written to it; one seen before the JDK took a call's body has {@link WorkerEndpoint} send the call once more. One that
 * crosses the body on the wire cannot be told from a worker that died with the batch in hand, and fails that batch
 * (502). Deliberately not set: {@code jdk.httpclient.enableAllMethodRetry}, which makes the JDK send a POST again
 * whenever its connection ends before the first byte of the answer, a worker that received the batch and died
 * included: a batch must never be generated twice.
 */
final class WorkerConnections {

    static final String KEEP_ALIVE = "jdk.httpclient.keepalive.timeout";
    /** The JDK's own default, {@code HttpClientImpl.DEFAULT_KEEP_ALIVE_TIMEOUT}. */
    static final long JDK_DEFAULT_SECONDS = 30;

    private WorkerConnections() {}

    /** The seconds this JVM's HTTP clients keep idle connections, read as the JDK reads it (a bad value is its default). */
    static long keepAliveSeconds(String property) {
        try {
            long seconds = property == null ? -1 : Long.parseLong(property.strip());
            return seconds >= 0 ? seconds : JDK_DEFAULT_SECONDS;
        } catch (NumberFormatException notANumber) {
            return JDK_DEFAULT_SECONDS;
        }
    }

    /** What to tell the operator when idle connections outlive {@code GATEWAY_WORKER_IDLE_TIMEOUT} in this JVM; else empty. */
    static Optional<String> longerThanWanted(Duration idleTimeout, String property) {
        long kept = keepAliveSeconds(property);
        long wanted = Math.max(1, idleTimeout.toSeconds());
        if (kept <= wanted) {
            return Optional.empty();
        }
        return Optional.of("idle worker connections stay open " + kept + " s in this JVM (" + KEEP_ALIVE + (property == null ? " unset" : "=" + property)
                + "), longer than GATEWAY_WORKER_IDLE_TIMEOUT=" + idleTimeout.toSeconds() + "s: a server that closes them first"
                + " may break off a batch (502). The JDK reads this only from its command line: start the gateway with"
                + " bin/batch-gateway, or give java -D" + KEEP_ALIVE + "=" + wanted);
    }
}
