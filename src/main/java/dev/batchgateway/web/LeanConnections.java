package dev.batchgateway.web;

import org.springframework.boot.tomcat.TomcatWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.stereotype.Component;

/**
 * Smaller per-connection socket buffers than Tomcat's 8 KiB each way: a gateway holds thousands of clients that wait
 * for their batch, each with a body of a few hundred bytes, and the buffers of idle waiters are most of its heap.
 */
@Component
class LeanConnections implements WebServerFactoryCustomizer<TomcatWebServerFactory> {

    static final int SOCKET_BUFFER_BYTES = 4096;

    @Override
    public void customize(TomcatWebServerFactory factory) {
        factory.addConnectorCustomizers(connector -> {
            connector.setProperty("socket.appReadBufSize", Integer.toString(SOCKET_BUFFER_BYTES));
            connector.setProperty("socket.appWriteBufSize", Integer.toString(SOCKET_BUFFER_BYTES));
        });
    }
}
