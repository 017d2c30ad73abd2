package dev.batchgateway.web;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import org.eclipse.jetty.server.ConnectionFactory;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.ServerConnector;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.jetty.JettyWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.stereotype.Component;

/**
 * The API port's defences against slow and numerous clients (docs/operations.md, Limits): a listen backlog for bursts
 * ({@code GATEWAY_ACCEPT_QUEUE}), a cap on open connections ({@link ConnectionCap}), and deadlines for a request's
 * headers and body ({@link RequestDeadlines}). The management port is another Jetty server, which these customizers
 * do not reach: a flood of the API port leaves its health and metrics answerable.
 */
@Component
@EnableConfigurationProperties(WebSettings.class)
class ConnectionProtection implements WebServerFactoryCustomizer<JettyWebServerFactory> {

    /**
     * Each response being written holds an output buffer of this size, in direct memory (by default capped at the
     * heap's size). Jetty's default of 32 KB: 10,000 streams asked for 320 MB of a 256 MB cap, and each allocation
     * beyond it forced a full collection (24 in 20 s, issue 32). Answers and events are small; larger bodies flush more.
     */
    static final int OUTPUT_BUFFER_BYTES = 8 * 1024;

    private final WebSettings limits;
    private final Duration bodyTimeout;
    private final Counter refused;
    private final Map<RequestDeadlines.Phase, Counter> late = new EnumMap<>(RequestDeadlines.Phase.class);
    private final MeterRegistry meters;

    ConnectionProtection(WebSettings limits, ObjectProvider<MeterRegistry> meters) {
        this.limits = limits;
        this.bodyTimeout = limits.bodyDeadline();
        this.meters = meters.getIfAvailable(SimpleMeterRegistry::new);
        this.refused = Counter.builder("gateway.connections.refused")
                .description("Connections to the API port closed on arrival: GATEWAY_MAX_CONNECTIONS were open")
                .register(this.meters);
        for (var phase : RequestDeadlines.Phase.values()) {
            late.put(phase, Counter.builder("gateway.connections.late")
                    .description("Connections closed because a request's headers or body did not arrive in time")
                    .tag("phase", phase.name().toLowerCase(Locale.ROOT))
                    .register(this.meters));
        }
    }

    @Override
    public void customize(JettyWebServerFactory factory) {
        factory.addServerCustomizers(server -> {
            for (var connector : server.getConnectors()) {
                if (connector instanceof ServerConnector network) {
                    protect(network);
                }
            }
        });
    }

    private void protect(ServerConnector connector) {
        connector.setAcceptQueueSize(limits.acceptQueue());
        var cap = new ConnectionCap(limits.maxConnections(), refused::increment);
        connector.getSelectorManager().addEventListener(cap);
        Gauge.builder("gateway.connections.open", cap, ConnectionCap::open)
                .description("Open connections to the API port, counted against GATEWAY_MAX_CONNECTIONS")
                .register(meters);
        var factories = new ArrayList<ConnectionFactory>();
        for (var factory : connector.getConnectionFactories()) {
            factories.add(factory instanceof HttpConnectionFactory http && !(factory instanceof RequestDeadlines)
                    ? deadlined(http)
                    : factory);
        }
        connector.setConnectionFactories(factories);
    }

    private RequestDeadlines deadlined(HttpConnectionFactory http) {
        var deadlined = new RequestDeadlines(http.getHttpConfiguration(), limits.headerTimeout(), bodyTimeout,
                phase -> late.get(phase).increment());
        deadlined.getHttpConfiguration().setOutputBufferSize(OUTPUT_BUFFER_BYTES);
        deadlined.setInputBufferSize(http.getInputBufferSize());
        deadlined.setUseInputDirectByteBuffers(http.isUseInputDirectByteBuffers());
        deadlined.setUseOutputDirectByteBuffers(http.isUseOutputDirectByteBuffers());
        deadlined.setTransferEncodingChunkMaxLength(http.getTransferEncodingChunkMaxLength());
        return deadlined;
    }
}
