package dev.batchgateway.web;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;
import org.springframework.boot.jetty.JettyWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.stereotype.Component;

/**
 * Requests Jetty refuses before any servlet sees them (headers over 8 KiB, such as a 10 KB {@code Authorization}; a
 * malformed request line) are answered in problem+json too, not with Jetty's HTML error page; under {@code /v1}, in
 * OpenAI's error shape.
 */
@Component
class JettyProblems implements WebServerFactoryCustomizer<JettyWebServerFactory> {

    @Override
    public void customize(JettyWebServerFactory factory) {
        factory.addServerCustomizers(server -> server.setErrorHandler(new ProblemReport()));
    }

    /** Jetty's error answer, written as RFC 9457 problem+json with the status's reason as detail. */
    static final class ProblemReport extends ErrorHandler {

        @Override
        protected void generateResponse(Request request, Response response, int code, String message, Throwable cause,
                Callback callback) {
            // headers too large: 400, as the gateway has always answered them (Jetty's own status would be 431)
            int status = code == HttpStatus.REQUEST_HEADER_FIELDS_TOO_LARGE_431 ? HttpStatus.BAD_REQUEST_400 : code;
            String title = HttpStatus.getMessage(status);
            String detail = status == 400 ? "the request is malformed (a header may be larger than 8 KiB)" : title;
            boolean openAi = request != null && request.getHttpURI() != null && OpenAiAdvice.covers(request.getHttpURI().getPath());
            byte[] body = openAi
                    ? OpenAiAdvice.bytes(new Failure(org.springframework.http.HttpStatusCode.valueOf(status), detail, null,
                            status >= 500 ? "server_error" : "invalid_request_error", null, null))
                    : ("{\"type\":\"about:blank\",\"title\":\"" + title + "\",\"status\":" + status
                            + ",\"detail\":\"" + detail + "\"}").getBytes(StandardCharsets.UTF_8);
            response.setStatus(status);
            // the same media type as every other problem of the gateway, without a charset (JSON is UTF-8)
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, openAi ? "application/json" : "application/problem+json");
            response.getHeaders().put(HttpHeader.CONTENT_LENGTH, body.length);
            response.write(true, ByteBuffer.wrap(body), callback);
        }
    }
}
