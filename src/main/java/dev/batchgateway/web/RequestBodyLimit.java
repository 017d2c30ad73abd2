package dev.batchgateway.web;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Refuses bodies over 1 MiB with 413 (but Batch API file uploads, {@code POST /v1/files}, limited where they are stored): at once when Content-Length says so (in OpenAI's error shape under {@code /v1},
 * problem+json elsewhere), and while reading when a chunked body grows past it.
 *
 * <p>A body the gateway answered before reading all of it (a 400 at its first bad byte, a 401 before it was read) is
 * read to its end afterwards: Jetty closes a connection that still holds unread request bytes, and closing a socket
 * with unread bytes resets it, which can destroy the answer before the client reads it.
 */
@Component
class RequestBodyLimit extends OncePerRequestFilter {

    static final long MAX_BYTES = 1024 * 1024;

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        if (isFileUpload(request)) {
            chain.doFilter(request, response); // a Batch API file: up to 200 MB, counted as it is stored (BatchFiles)
            return;
        }
        if (request.getContentLengthLong() > MAX_BYTES) {
            response.setStatus(HttpStatus.CONTENT_TOO_LARGE.value());
            response.setHeader("Connection", "close");
            if (OpenAiAdvice.covers(request.getRequestURI())) {
                var failure = new Failure(HttpStatus.CONTENT_TOO_LARGE, new BodyTooLargeException().getMessage(), null,
                        "invalid_request_error", null, null);
                request.setAttribute(RequestTracking.FAILURE, failure.message());
                byte[] body = OpenAiAdvice.bytes(failure);
                response.setContentType(MediaType.APPLICATION_JSON_VALUE);
                response.setContentLength(body.length); // its end known from its length, whatever the close does
                response.getOutputStream().write(body);
                return;
            }
            response.setContentType(MediaType.APPLICATION_PROBLEM_JSON_VALUE);
            response.getOutputStream().write(("""
                    {"type":"about:blank","title":"Content Too Large","status":413,\
                    "detail":"the request body is larger than %d bytes","instance":"%s"}"""
                    .formatted(MAX_BYTES, request.getRequestURI().replace("\"", "")))
                    .getBytes(StandardCharsets.UTF_8));
            return;
        }
        var body = new LimitedBody(request);
        try {
            chain.doFilter(body, response);
        } finally {
            body.readToEnd();
        }
    }

    private static boolean isFileUpload(HttpServletRequest request) {
        return "POST".equals(request.getMethod()) && "/v1/files".equals(request.getRequestURI());
    }

    private static final class LimitedBody extends HttpServletRequestWrapper {
        private ServletInputStream limited;

        LimitedBody(HttpServletRequest request) {
            super(request);
        }

        @Override
        public ServletInputStream getInputStream() throws IOException {
            if (limited == null) {
                limited = new LimitedStream(super.getInputStream());
            }
            return limited;
        }

        /** Reads what is left of the body (at most the limit) and forgets it; a client that has gone is no matter. */
        void readToEnd() {
            try {
                var rest = (LimitedStream) getInputStream();
                if (rest.isFinished() || rest.late) {
                    return; // the body was read to its end; or it came too late, and the connection closes
                }
                // the usual case: a body read by its Content-Length, whose end is not seen until a read finds it
                if (rest.read() < 0) {
                    return;
                }
                byte[] discard = new byte[4096];
                while (!rest.isFinished() && rest.read(discard) >= 0) {
                    // the bytes are not needed: only their end is
                }
            } catch (IOException | IllegalStateException unreadable) {
                // too large (the 413 went out already), broken off, or read as characters: Jetty deals with what is left
            }
        }
    }

    private static final class LimitedStream extends ServletInputStream {
        private final ServletInputStream body;
        private long read;
        /** Whether the body was cut off at its deadline: nothing more is read of it. */
        private boolean late;

        LimitedStream(ServletInputStream body) {
            this.body = body;
        }

        @Override
        public int read() throws IOException {
            int b;
            try {
                b = body.read();
            } catch (IOException e) {
                throw late(e);
            }
            if (b >= 0) {
                count(1);
            }
            return b;
        }

        @Override
        public int read(byte[] buffer, int offset, int length) throws IOException {
            int n;
            try {
                n = body.read(buffer, offset, length);
            } catch (IOException e) {
                throw late(e);
            }
            if (n > 0) {
                count(n);
            }
            return n;
        }

        /** A body cut off at its deadline is told apart from one broken off, so that it is answered 408. */
        private IOException late(IOException failure) {
            late = BodyTimeoutException.isLateBody(failure);
            return late ? new BodyTimeoutException(failure) : failure;
        }

        private void count(int bytes) throws BodyTooLargeException {
            read += bytes;
            if (read > MAX_BYTES) {
                throw new BodyTooLargeException();
            }
        }

        @Override
        public boolean isFinished() {
            return body.isFinished();
        }

        @Override
        public boolean isReady() {
            return body.isReady();
        }

        @Override
        public void setReadListener(ReadListener listener) {
            body.setReadListener(listener);
        }
    }
}
