package dev.batchgateway.web;

import org.eclipse.jetty.ee11.servlet.ServletHandler;
import org.eclipse.jetty.http.UriCompliance;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.springframework.boot.jetty.JettyWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.stereotype.Component;

/**
 * An encoded slash ({@code %2F}) is taken in a path, where Jetty would refuse it with 400: OpenAI's SDKs send a model id
 * as one path segment, so {@code models.retrieve("Qwen/Qwen2.5-1.5B-Instruct")} asks for
 * {@code /v1/models/Qwen%2FQwen2.5-1.5B-Instruct}. Spring matches routes on the path's segments as sent, so such a
 * segment is one segment, decoded only into the route's variable; anywhere else it names no route (404).
 */
@Component
class EncodedSlashes implements WebServerFactoryCustomizer<JettyWebServerFactory> {

    @Override
    public void customize(JettyWebServerFactory factory) {
        factory.addServerCustomizers(server -> {
            for (var connector : server.getConnectors()) {
                var http = connector.getConnectionFactory(HttpConnectionFactory.class);
                if (http != null) {
                    var configuration = http.getHttpConfiguration();
                    configuration.setUriCompliance(configuration.getUriCompliance()
                            .with("encoded slashes", UriCompliance.Violation.AMBIGUOUS_PATH_SEPARATOR));
                }
            }
            server.getDescendants(ServletHandler.class).forEach(servlets -> servlets.setDecodeAmbiguousURIs(true));
        });
    }
}
