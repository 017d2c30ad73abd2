package dev.batchgateway.worker;

import java.time.Duration;
import org.springframework.boot.context.event.ApplicationEnvironmentPreparedEvent;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.ApplicationListener;

/**
 * Sets up the JDK HTTP client's connection reuse for the worker calls, before any client exists (the JDK reads it once,
 * when its first client is built): {@code jdk.httpclient.keepalive.timeout}, so that idle connections close after
 * {@code GATEWAY_WORKER_IDLE_TIMEOUT} (whole seconds), before the server closes them itself (vLLM's uvicorn and
 * llama.cpp's server do after 5 s; the JDK's default is 30 s). A value given on the command line wins.
 *
 * <p>A close by the server that arrives while a connection is idle takes it out of the JDK's pool before any call is
 * written to it; one seen before the JDK took a call's body has {@link WorkerEndpoint} send the call once more. One that
 * crosses the body on the wire cannot be told from a worker that died with the batch in hand, and fails that batch
 * (502). Deliberately not set: {@code jdk.httpclient.enableAllMethodRetry}, which makes the JDK send a POST again
 * whenever its connection ends before the first byte of the answer, a worker that received the batch and died
 * included: a batch must never be generated twice. Registered in {@code META-INF/spring.factories}.
 */
class WorkerConnections implements ApplicationListener<ApplicationEnvironmentPreparedEvent> {

    static final String KEEP_ALIVE = "jdk.httpclient.keepalive.timeout";

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
    }
}
