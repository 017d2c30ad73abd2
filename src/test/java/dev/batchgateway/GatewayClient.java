package dev.batchgateway;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntSupplier;
import org.awaitility.Awaitility;
import tools.jackson.databind.json.JsonMapper;

/**
 * Real HTTP to a gateway started on a local port, for the tests that run the whole application. It calls as the user
 * a body names: it mints that user's API key once through the admin API (with {@link GatewayApplicationTest#ADMIN_TOKEN})
 * and sends it as {@code Authorization: Bearer}. {@link #get} sends the admin token, which may read any user's usage;
 * {@code /actuator/} paths go to the management port.
 */
public final class GatewayClient {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final IntSupplier port;
    private final IntSupplier managementPort;
    private final HttpClient http = HttpClient.newHttpClient();
    private final JsonMapper json = JsonMapper.builder().build();
    private final Map<Long, String> keys = new ConcurrentHashMap<>();

    /** A client of the API port only. */
    public GatewayClient(int port) {
        this(port, -1);
    }

    public GatewayClient(int port, int managementPort) {
        this(() -> port, () -> managementPort);
    }

    /** A client whose ports are known only once the gateway runs: asked at each call (see GatewayApplicationTest). */
    GatewayClient(IntSupplier port, IntSupplier managementPort) {
        this.port = port;
        this.managementPort = managementPort;
    }

    /**
     * Whether a TCP connection to this address and port is accepted. On Linux every 127.x.y.z is the loopback interface:
     * a port bound to all interfaces accepts on 127.0.0.2, one bound to 127.0.0.1 refuses it at once.
     */
    public static boolean accepts(String address, int port) {
        try (var socket = new Socket()) {
            socket.connect(new InetSocketAddress(address, port), (int) TIMEOUT.toMillis());
            return true;
        } catch (IOException refused) {
            return false;
        }
    }

    /** {@code POST /complete} with the body as JSON, with the API key of the body's {@code user_id}. */
    public HttpResponse<String> complete(Map<String, Object> body) {
        var request = HttpRequest.newBuilder(uri("/complete"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json.writeValueAsString(body)));
        if (body.get("user_id") instanceof Number user) {
            request.header("Authorization", bearer(user.longValue()));
        }
        return send(request);
    }

    /** {@code GET} with the admin token; {@code /actuator/} paths on the management port. */
    public HttpResponse<String> get(String path) {
        return send(HttpRequest.newBuilder(uri(path)).header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN));
    }

    /** An admin API call with the admin token: {@code body} is JSON, or null for none. */
    public HttpResponse<String> admin(String method, String path, String body) {
        return send(HttpRequest.newBuilder(uri(path))
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body)));
    }

    /** {@code POST} of a JSON body with these credentials ({@code Bearer …}). */
    public HttpResponse<String> post(String path, String authorization, String body) {
        return send(HttpRequest.newBuilder(uri(path))
                .header("Content-Type", "application/json")
                .header("Authorization", authorization)
                .POST(HttpRequest.BodyPublishers.ofString(body)));
    }

    /** {@code Bearer <key>} for this user, minted on first use. */
    public String bearer(long user) {
        return "Bearer " + key(user);
    }

    /** This user's API key, minted on first use through {@code POST /admin/keys}. */
    public String key(long user) {
        return keys.computeIfAbsent(user, this::mint);
    }

    /**
     * Sets the user's limits ({@code PUT /admin/users/{id}/limits}, a JSON object) and waits, at most 5 s, until
     * {@code GET /usage/{id}} shows them applied.
     */
    public void limit(long user, String limits) {
        var stored = admin("PUT", "/admin/users/" + user + "/limits", limits);
        if (stored.statusCode() != 200) {
            throw new IllegalStateException("could not set the limits of user " + user + ": " + stored.statusCode() + " " + stored.body());
        }
        var expected = json.readTree(limits);
        Awaitility.await("the limits of user " + user + " applied within 5 s").atMost(Duration.ofSeconds(5))
                .pollInterval(Duration.ofMillis(20))
                .until(() -> expected.equals(json.readTree(get("/usage/" + user).body()).get("limits")));
    }

    /** {@code gateway_rejections_total} of one reason ({@code tokens_per_day}, …), as scraped now. */
    public double rejections(String reason) {
        String series = "gateway_rejections_total{reason=\"" + reason + "\"}";
        return get("/actuator/prometheus").body().lines().filter(line -> line.startsWith(series + " "))
                .mapToDouble(line -> Double.parseDouble(line.substring(series.length() + 1).strip()))
                .findFirst().orElseThrow(() -> new AssertionError(series + " is not scraped"));
    }

    public URI uri(String path) {
        int to = path.startsWith("/actuator/") && managementPort.getAsInt() > 0 ? managementPort.getAsInt() : port.getAsInt();
        return URI.create("http://localhost:" + to + path);
    }

    private String mint(long user) {
        var created = send(HttpRequest.newBuilder(uri("/admin/keys"))
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer " + GatewayApplicationTest.ADMIN_TOKEN)
                .POST(HttpRequest.BodyPublishers.ofString("{\"user_id\": " + user + ", \"name\": \"test\"}")));
        if (created.statusCode() != 201) {
            throw new IllegalStateException("could not mint a key for user " + user + ": " + created.statusCode() + " " + created.body());
        }
        return json.readTree(created.body()).get("key").asString();
    }

    public HttpResponse<String> send(HttpRequest.Builder request) {
        try {
            return http.send(request.timeout(TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the gateway", e);
        }
    }
}
