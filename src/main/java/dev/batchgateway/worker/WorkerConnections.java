package dev.batchgateway.worker;

import java.time.Duration;
import org.springframework.boot.context.event.ApplicationEnvironmentPreparedEvent;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.ApplicationListener;

/**
 * Sets up the JDK HTTP client's connection reuse for the worker calls, before any client exists (the JDK reads these
 * settings once, when its first client is built):
 * <ul>
 *   <li>{@code jdk.httpclient.keepalive.timeout}: idle connections close after {@code GATEWAY_WORKER_IDLE_TIMEOUT}
 *       (whole seconds), before the server closes them itself (vLLM's uvicorn after 5 s; the JDK's default is 30 s);
 *   <li>{@code jdk.httpclient.enableAllMethodRetry}: a call whose connection the server closed before any byte of the
 *       answer arrived (above all a kept-alive connection it had just closed as idle) is sent once more, on a fresh
 *       connection. The JDK does this for GET only by default, and cannot tell a reused connection from a fresh one
 *       there: a server that closes a fresh connection unanswered also gets the batch twice, never more.
 * </ul>
 * A value given on the command line ({@code -Djdk.httpclient…}) wins. Registered in {@code META-INF/spring.factories}.
 */
class WorkerConnections implements ApplicationListener<ApplicationEnvironmentPreparedEvent> {

    static final String KEEP_ALIVE = "jdk.httpclient.keepalive.timeout";
    static final String RETRY_ALL_METHODS = "jdk.httpclient.enableAllMethodRetry";

    @Override
    public void onApplicationEvent(ApplicationEnvironmentPreparedEvent event) {
        Duration idle;
        try {
            idle = Binder.get(event.getEnvironment())
                    .bind("gateway.worker.idle-timeout", Duration.class)
                    .orElse(Duration.ofSeconds(4));
        } catch (RuntimeException invalid) {
            return; // GatewayProperties names the bad setting when it is bound
        }
        configure(idle);
    }

    static void configure(Duration idle) {
        if (System.getProperty(KEEP_ALIVE) == null) {
            System.setProperty(KEEP_ALIVE, Long.toString(Math.max(1, idle.toSeconds())));
        }
        if (System.getProperty(RETRY_ALL_METHODS) == null) {
            System.setProperty(RETRY_ALL_METHODS, "true");
        }
    }
}
