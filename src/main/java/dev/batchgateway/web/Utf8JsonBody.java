package dev.batchgateway.web;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Type;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.springframework.core.MethodParameter;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpInputMessage;
import org.springframework.http.MediaType;
import org.springframework.http.converter.HttpMessageConverter;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.bind.annotation.ControllerAdvice;
import org.springframework.web.servlet.mvc.method.annotation.RequestBodyAdviceAdapter;

/**
 * Every request body the gateway reads is UTF-8 JSON (RFC 8259), checked before any parser sees it:
 * <ul>
 * <li>a Content-Type other than {@code application/json}, or one declaring another charset: 415;
 * <li>a byte-order mark, or the zero bytes of UTF-16 or UTF-32 (JSON text begins with an ASCII character): 415, where
 *     Jackson would otherwise detect the encoding and read the body anyway;
 * <li>bytes that are not UTF-8 by RFC 3629, such as the overlong {@code C0 AF} for "/", {@code C0 80} for NUL, an
 *     encoded surrogate or a code point beyond U+10FFFF: 400 (an {@link HttpMessageNotReadableException} like any
 *     malformed body), where Jackson would decode some of them into characters the worker then receives.
 * </ul>
 * Its checks run when a handler's body is read, that is after its {@code Caller} is resolved: a caller without
 * credentials gets 401 before anything is said about the body ({@link CallerArgument}).
 */
@ControllerAdvice
class Utf8JsonBody extends RequestBodyAdviceAdapter {

    @Override
    public boolean supports(MethodParameter parameter, Type targetType, Class<? extends HttpMessageConverter<?>> converter) {
        return true;
    }

    @Override
    public HttpInputMessage beforeBodyRead(HttpInputMessage input, MethodParameter parameter, Type targetType,
            Class<? extends HttpMessageConverter<?>> converter) throws IOException {
        requireJson(input.getHeaders().getContentType());
        byte[] body;
        long declared = input.getHeaders().getContentLength();
        try (InputStream in = input.getBody()) {
            // at most RequestBodyLimit.MAX_BYTES: the limit's stream refuses more. A declared length is read into an
            // array of its size: readAllBytes starts with a 16 KiB buffer and copies, garbage on every request
            body = declared >= 0 && declared <= RequestBodyLimit.MAX_BYTES ? in.readNBytes((int) declared) : in.readAllBytes();
        }
        requireUtf8(body);
        HttpHeaders headers = input.getHeaders();
        return new HttpInputMessage() {
            @Override
            public InputStream getBody() {
                return new ByteArrayInputStream(body);
            }

            @Override
            public HttpHeaders getHeaders() {
                return headers;
            }
        };
    }

    private static void requireJson(MediaType declared) {
        if (declared == null || !MediaType.APPLICATION_JSON.equalsTypeAndSubtype(declared)) {
            throw new UnsupportedMediaType(declared);
        }
        String charset = declared.getParameter("charset");
        if (charset == null) {
            return;
        }
        boolean utf8;
        try {
            utf8 = Charset.forName(charset.replace("\"", "")).equals(StandardCharsets.UTF_8);
        } catch (IllegalArgumentException unknown) {
            utf8 = false;
        }
        if (!utf8) {
            throw UnsupportedCharsetException.declared(charset);
        }
    }

    private static void requireUtf8(byte[] body) throws CharacterCodingException {
        if (startsWithByteOrderMark(body) || hasZeroByteInFirstFour(body)) {
            throw UnsupportedCharsetException.byteOrderMarkOrWideEncoding();
        }
        // ASCII is UTF-8: only what follows the first other byte is decoded (most bodies are ASCII, and were decoded
        // with 2 KB of garbage each), through a small window, only to be checked: Jackson decodes the bytes again
        int firstNonAscii = 0;
        while (firstNonAscii < body.length && body[firstNonAscii] >= 0) {
            firstNonAscii++;
        }
        if (firstNonAscii == body.length) {
            return;
        }
        CharsetDecoder strict = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(body, firstNonAscii, body.length - firstNonAscii);
        CharBuffer window = CharBuffer.allocate(256);
        while (true) {
            CoderResult result = strict.decode(in, window, true);
            if (result.isError()) {
                throw new InvalidUtf8Exception(in.position());
            }
            if (result.isUnderflow()) {
                break;
            }
            window.clear();
        }
    }

    private static boolean startsWithByteOrderMark(byte[] body) {
        return body.length >= 2 && ((body[0] & 0xFF) == 0xFE && (body[1] & 0xFF) == 0xFF
                || (body[0] & 0xFF) == 0xFF && (body[1] & 0xFF) == 0xFE
                || body.length >= 3 && (body[0] & 0xFF) == 0xEF && (body[1] & 0xFF) == 0xBB && (body[2] & 0xFF) == 0xBF);
    }

    /** UTF-16 and UTF-32 without a BOM: JSON's first character is ASCII, so one of the first four bytes is zero. */
    private static boolean hasZeroByteInFirstFour(byte[] body) {
        for (int i = 0; i < Math.min(4, body.length); i++) {
            if (body[i] == 0) {
                return true;
            }
        }
        return false;
    }

    /** The body's bytes are not UTF-8; an {@link IOException}, so Spring reports the body as not readable (400). */
    static final class InvalidUtf8Exception extends CharacterCodingException {
        private final int offset;

        InvalidUtf8Exception(int offset) {
            this.offset = offset;
        }

        @Override
        public String getMessage() {
            return "the request body is not valid UTF-8 (at byte " + offset + ")";
        }
    }

    /** A Content-Type that is not JSON: 415, answered as Spring answers a mapping's {@code consumes}. */
    static final class UnsupportedMediaType extends RuntimeException {
        private final transient MediaType declared;

        UnsupportedMediaType(MediaType declared) {
            super("Content-Type " + declared + " is not supported");
            this.declared = declared == null ? MediaType.APPLICATION_OCTET_STREAM : declared; // as Spring takes a missing one
        }

        HttpMediaTypeNotSupportedException asSpring() {
            return new HttpMediaTypeNotSupportedException(declared, List.of(MediaType.APPLICATION_JSON));
        }
    }
}
