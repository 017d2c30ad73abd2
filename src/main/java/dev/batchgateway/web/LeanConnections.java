package dev.batchgateway.web;

import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.util.thread.VirtualThreadPool;
import org.springframework.boot.jetty.JettyWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.stereotype.Component;

/**
 * Jetty set up for thousands of clients that wait for their batch:
 * <ul>
 * <li>every request gets its virtual thread at once: Jetty's pool would run at most {@code server.jetty.threads.max}
 *     (200) at a time and hold the rest unseen, before the gateway's queue, where no deadline, no departed-client check
 *     and no 503 for a full queue apply; with 1,024 clients that capped throughput at 200 requests in flight. The
 *     gateway's own queue ({@code GATEWAY_QUEUE_CAPACITY}) is the bound;
 * <li>no per-connection header cache: Jetty keeps an index of up to 1,024 header fields on every connection (about
 *     90 KB once built), to parse repeated headers of a kept-alive connection faster. Without it a waiting client
 *     costs about 10 KB of heap (docs/performance.md).
 * </ul>
 */
@Component
class LeanConnections implements WebServerFactoryCustomizer<JettyWebServerFactory> {

    @Override
    public void customize(JettyWebServerFactory factory) {
        factory.addServerCustomizers(server -> {
            if (server.getThreadPool() instanceof VirtualThreadPool threads) {
                threads.setMaxConcurrentTasks(0); // no limit
            }
            for (var connector : server.getConnectors()) {
                var http = connector.getConnectionFactory(HttpConnectionFactory.class);
                if (http != null) {
                    http.getHttpConfiguration().setHeaderCacheSize(0);
                }
            }
        });
    }
}
