package dev.batchgateway.web;

import jakarta.servlet.ServletException;
import java.io.IOException;
import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.valves.ValveBase;
import org.springframework.boot.tomcat.TomcatWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.stereotype.Component;

/** Gives each {@code /complete} and {@code /v1/…completions} request a {@link ConnectionProbe} on its Tomcat connection. */
final class ConnectionProbeValve extends ValveBase {

    ConnectionProbeValve() {
        super(true);
    }

    @Override
    public void invoke(Request request, Response response) throws IOException, ServletException {
        String path = request.getRequestURI();
        if ("/complete".equals(path) || "/v1/completions".equals(path) || "/v1/chat/completions".equals(path)) {
            request.setAttribute(ConnectionProbe.ATTRIBUTE, new ConnectionProbe(request.getCoyoteRequest()));
        }
        getNext().invoke(request, response);
    }

    /** Installs the valve in the embedded Tomcat; without Tomcat (MockMvc) callers are assumed present. */
    @Component
    static class Installer implements WebServerFactoryCustomizer<TomcatWebServerFactory> {
        @Override
        public void customize(TomcatWebServerFactory factory) {
            factory.addContextValves(new ConnectionProbeValve());
        }
    }
}
