package dev.batchgateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.springframework.boot.convert.DurationStyle;

/**
 * deploy/nginx/nginx.conf keeps the retry rule's reasoning true (docs/scaling-out.md): nginx sends a request on only
 * when the gateway answered 503 or never took it. Checked as text here; deploy/cluster-check.sh runs the file itself.
 */
class NginxConfigTest {

    private static final Path CONFIG = Path.of("deploy/nginx/nginx.conf");

    @Test
    void retriesOnlyWhatNoGatewayTookAndTheGatewaysDeadlineComesFirst() throws IOException {
        String config = withoutComments(Files.readString(CONFIG));

        // Only errors before an answer, timeouts, and 503s are sent on, POSTs included, the body kept for it
        assertThat(values(config, "proxy_next_upstream")).containsExactly("error timeout http_503 non_idempotent");
        assertThat(values(withoutBlock(config, UPLOADS), "proxy_request_buffering")).doesNotContain("off");

        // A timeout can be retried only within proxy_next_upstream_timeout, counted from the first attempt: the
        // connect timeout fits in it, the send and read timeouts (after which a gateway may be generating) do not
        Duration connect = duration(config, "proxy_connect_timeout");
        Duration window = duration(config, "proxy_next_upstream_timeout");
        Duration send = duration(config, "proxy_send_timeout");
        Duration read = duration(config, "proxy_read_timeout");
        assertThat(connect).isLessThan(window);
        assertThat(window).isPositive().isLessThan(send);
        assertThat(send).isLessThanOrEqualTo(read);

        // And the gateway's own deadline ends first, so its 504 (it knows what was billed) reaches the caller
        String applicationYml = Files.readString(Path.of("src/main/resources/application.yml"));
        Matcher requestTimeout = Pattern.compile("request-timeout: \\$\\{GATEWAY_REQUEST_TIMEOUT:([^}]+)}").matcher(applicationYml);
        assertThat(requestTimeout.find()).isTrue();
        assertThat(read).isGreaterThan(DurationStyle.detectAndParse(requestTimeout.group(1)));
    }

    @Test
    void completionsAreStreamedThroughUnbuffered() throws IOException {
        String config = withoutComments(Files.readString(CONFIG));
        for (String location : List.of("location = /complete", "location /v1/")) {
            int start = config.indexOf(location);
            assertThat(start).as(location).isNotNegative();
            String block = config.substring(start, config.indexOf('}', start));
            assertThat(block).as(location).contains("proxy_buffering off;").contains("proxy_pass http://batch_gateway;");
        }
        assertThat(values(config, "proxy_http_version")).containsExactly("1.1");
        assertThat(config).contains("proxy_set_header Connection \"\";").containsPattern("keepalive \\d+;");
    }

    @Test
    void batchFileUploadsUpTo200MiBStreamToTheGatewayAndOtherBodiesStaySmall() throws IOException {
        String config = withoutComments(Files.readString(CONFIG));
        String uploads = block(config, UPLOADS);
        assertThat(uploads).contains("proxy_pass http://batch_gateway;");
        assertThat(values(uploads, "proxy_request_buffering")).as("an upload streams through").containsExactly("off");
        long uploadLimit = bytes(values(uploads, "client_max_body_size").getFirst());
        assertThat(uploadLimit).as("a 200 MiB file and its multipart envelope pass; the gateway refuses more itself")
                .isGreaterThan(200L * 1024 * 1024).isLessThanOrEqualTo(210L * 1024 * 1024);
        assertThat(values(withoutBlock(config, UPLOADS), "client_max_body_size")).as("every other body").containsExactly("2m");
    }

    private static final String UPLOADS = "location = /v1/files";

    private static String block(String config, String location) {
        int start = config.indexOf(location);
        assertThat(start).as(location).isNotNegative();
        return config.substring(start, config.indexOf('}', start) + 1);
    }

    private static String withoutBlock(String config, String location) {
        return config.replace(block(config, location), "");
    }

    private static long bytes(String size) {
        Matcher matcher = Pattern.compile("(\\d+)([kKmM]?)").matcher(size);
        assertThat(matcher.matches()).as(size).isTrue();
        long unit = switch (matcher.group(2).toLowerCase()) {
            case "k" -> 1024L;
            case "m" -> 1024L * 1024;
            default -> 1L;
        };
        return Long.parseLong(matcher.group(1)) * unit;
    }

    private static String withoutComments(String config) {
        return config.replaceAll("(?m)#.*$", "");
    }

    private static List<String> values(String config, String directive) {
        Matcher matcher = Pattern.compile("(?m)^\\s*" + Pattern.quote(directive) + "\\s+([^;]+);").matcher(config);
        List<String> values = new ArrayList<>();
        while (matcher.find()) {
            values.add(matcher.group(1).strip());
        }
        return values;
    }

    private static Duration duration(String config, String directive) {
        List<String> values = values(config, directive);
        assertThat(values).as(directive).hasSize(1);
        return DurationStyle.detectAndParse(values.getFirst());
    }
}
