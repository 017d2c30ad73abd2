package dev.batchgateway.web;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.apache.catalina.Valve;
import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.core.StandardHost;
import org.apache.catalina.valves.ErrorReportValve;
import org.springframework.boot.tomcat.TomcatWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/**
 * Requests Tomcat refuses before any servlet sees them (a header over 8 KiB, such as a 10 KB {@code Authorization}; a
 * malformed request line) are answered in problem+json too, not with Tomcat's HTML error page.
 */
@Component
class TomcatProblems implements WebServerFactoryCustomizer<TomcatWebServerFactory> {

    @Override
    public void customize(TomcatWebServerFactory factory) {
        factory.addContextCustomizers(context -> {
            if (context.getParent() instanceof StandardHost host) {
                // in place of Spring Boot's own ErrorReportValve, and of the one the host would add when it starts
                for (Valve valve : host.getPipeline().getValves()) {
                    if (valve instanceof ErrorReportValve) {
                        host.getPipeline().removeValve(valve);
                    }
                }
                host.setErrorReportValveClass(ProblemReport.class.getName());
                host.getPipeline().addValve(new ProblemReport());
            }
        });
    }

    /** Tomcat's error report, written as RFC 9457 problem+json with the status's reason as detail. */
    public static final class ProblemReport extends ErrorReportValve {

        @Override
        protected void report(Request request, Response response, Throwable failure) {
            int status = response.getStatus();
            if (status < 400 || response.getContentWritten() > 0 || !response.setErrorReported()) {
                return;
            }
            HttpStatus known = HttpStatus.resolve(status);
            String title = known != null ? known.getReasonPhrase() : "Error";
            String detail = status == 400 ? "the request is malformed (a header may be larger than 8 KiB)" : title;
            byte[] body = ("{\"type\":\"about:blank\",\"title\":\"" + title + "\",\"status\":" + status
                    + ",\"detail\":\"" + detail + "\"}").getBytes(StandardCharsets.UTF_8);
            try {
                // the same media type as every other problem of the gateway, without a charset (JSON is UTF-8)
                response.setContentType("application/problem+json");
                response.setContentLength(body.length);
                response.getOutputStream().write(body);
                response.finishResponse();
            } catch (IOException | IllegalStateException ignored) {
                // the client has gone or the response cannot be written: nothing left to tell it
            }
        }
    }
}
