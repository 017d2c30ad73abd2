package dev.batchgateway.web;

import org.eclipse.jetty.server.HttpConnectionFactory;
import org.springframework.boot.jetty.JettyWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.stereotype.Component;

/**
 * No per-connection header cache: Jetty's keeps an index of up to 1,024 header fields on every connection (about
 * 90 KB once built), to parse repeated headers of a kept-alive connection faster. A gateway holds thousands of clients
 * that wait for their batch; without the cache a waiting client costs about 10 KB of heap (docs/performance.md).
 */
@Component
class LeanConnections implements WebServerFactoryCustomizer<JettyWebServerFactory> {

    @Override
    public void customize(JettyWebServerFactory factory) {
        factory.addServerCustomizers(server -> {
            for (var connector : server.getConnectors()) {
                var http = connector.getConnectionFactory(HttpConnectionFactory.class);
                if (http != null) {
                    http.getHttpConfiguration().setHeaderCacheSize(0);
                }
            }
        });
    }
}
