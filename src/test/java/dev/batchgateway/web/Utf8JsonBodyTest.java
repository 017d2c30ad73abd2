package dev.batchgateway.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.springframework.http.MediaType;
import org.springframework.mock.http.MockHttpInputMessage;

/** The body's bytes as the advice checks them: ASCII at once, the rest decoded strictly from the first other byte. */
class Utf8JsonBodyTest {

    private final Utf8JsonBody advice = new Utf8JsonBody();

    @Test
    void anAsciiBodyAndOneWithCharactersBeyondAsciiAreReadAsTheyCame() throws IOException {
        for (String json : new String[] {"{\"prompt\": \"hello\"}", "{\"prompt\": \"héllo, 世界 🙂\"}"}) {
            byte[] body = json.getBytes(StandardCharsets.UTF_8);
            assertThat(read(body)).isEqualTo(body);
        }
    }

    @Test
    void bytesThatAreNotUtf8AreNamedByTheirOffsetInTheWholeBody() {
        // Given an overlong "/" (C0 AF) after twelve ASCII bytes, and one after a valid two-byte character
        byte[] afterAscii = concat("{\"prompt\":\"a", new byte[] {(byte) 0xC0, (byte) 0xAF}, "\"}");
        byte[] afterAccent = concat("{\"prompt\":\"é", new byte[] {(byte) 0xC0, (byte) 0xAF}, "\"}");

        // Then each is refused at the first byte that is not UTF-8
        assertThatThrownBy(() -> read(afterAscii)).isInstanceOf(Utf8JsonBody.InvalidUtf8Exception.class)
                .hasMessage("the request body is not valid UTF-8 (at byte 12)");
        assertThatThrownBy(() -> read(afterAccent)).isInstanceOf(Utf8JsonBody.InvalidUtf8Exception.class)
                .hasMessage("the request body is not valid UTF-8 (at byte 13)");
    }

    private byte[] read(byte[] body) throws IOException {
        var sent = new MockHttpInputMessage(body);
        sent.getHeaders().setContentType(MediaType.APPLICATION_JSON);
        sent.getHeaders().setContentLength(body.length);
        return advice.beforeBodyRead(sent, null, byte[].class, null).getBody().readAllBytes();
    }

    private static byte[] concat(String before, byte[] middle, String after) {
        var out = new ByteArrayOutputStream();
        out.writeBytes(before.getBytes(StandardCharsets.UTF_8));
        out.writeBytes(middle);
        out.writeBytes(after.getBytes(StandardCharsets.UTF_8));
        return out.toByteArray();
    }
}
