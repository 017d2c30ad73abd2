import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A stand-in for vLLM's OpenAI-compatible server, for benchmarks: {@code POST /v1/completions} with a prompt or a list
 * of prompts answers after {@code latency + perToken * max_tokens}, one choice per prompt with {@code index},
 * {@code prompt_token_ids} and {@code token_ids} (one token per word, completion = max_tokens tokens);
 * {@code GET /health} answers 200; {@code GET /v1/models} lists the model {@code fake}; {@code GET /stats} answers
 * "calls prompts", {@code GET /inflight} "calls now, most calls at once". With {@code "stream":true} the answer is
 * vLLM's server-sent events: nothing until {@code latency} has passed (the time to the first token), then one chunk per
 * prompt and token, every {@code perToken}, each with that prompt's running counts (continuous usage stats), then {@code data: [DONE]}. {@code POST /v1/embeddings} with an
 * input or a list of inputs answers after {@code latency} with a vector per input ({@code dimensions}, default 8, from
 * a hash of the input) and the call's usage only, as vLLM's pooling runner does; its calls and inputs count in
 * {@code /stats} too. Dependency-free, virtual threads:
 * run it with {@code java bench/FakeVllm.java PORT LATENCY_MS [PER_TOKEN_MICROS]}.
 */
public class FakeVllm {

    static final AtomicLong calls = new AtomicLong();
    static final AtomicLong prompts = new AtomicLong();
    /**
     * Calls being answered now, and the most at once since the start or the last reset: {@code GET /inflight} answers
     * "now most", {@code DELETE /inflight} starts the most again from now (after a warm-up).
     */
    static final AtomicLong inFlight = new AtomicLong();
    static final AtomicLong mostInFlight = new AtomicLong();

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(args[0]);
        Duration latency = Duration.ofMillis(Long.parseLong(args[1]));
        long perTokenMicros = args.length > 2 ? Long.parseLong(args[2]) : 0;
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 4096);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/health", exchange -> send(exchange, 200, ""));
        server.createContext("/stats", exchange -> send(exchange, 200, calls.get() + " " + prompts.get()));
        server.createContext("/inflight", exchange -> {
            if ("DELETE".equals(exchange.getRequestMethod())) {
                mostInFlight.set(inFlight.get());
            }
            send(exchange, 200, inFlight.get() + " " + mostInFlight.get());
        });
        server.createContext("/v1/completions", exchange -> {
            mostInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            try {
                complete(exchange, latency, perTokenMicros);
            } finally {
                inFlight.decrementAndGet();
            }
        });
        server.createContext("/v1/embeddings", exchange -> embed(exchange, latency));
        // the gateway's health check lists the models: readiness needs the model "fake" (GATEWAY_WORKER_MODEL=fake)
        server.createContext("/v1/models", exchange -> send(exchange, 200,
                "{\"object\":\"list\",\"data\":[{\"id\":\"fake\",\"object\":\"model\",\"owned_by\":\"vllm\"}]}"));
        server.start();
        System.out.println("fake vLLM on 127.0.0.1:" + port + ", latency " + latency.toMillis() + " ms");
    }

    static void complete(HttpExchange exchange, Duration latency, long perTokenMicros) throws IOException {
        String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        List<String> batch = promptsOf(body);
        int maxTokens = intField(body, "\"max_tokens\"", 16);
        calls.incrementAndGet();
        prompts.addAndGet(batch.size());
        if (body.contains("\"stream\":true")) {
            stream(exchange, batch, maxTokens, latency, perTokenMicros);
            return;
        }
        try {
            Thread.sleep(latency.plus(Duration.ofNanos(perTokenMicros * 1000 * maxTokens)));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        StringBuilder json = new StringBuilder(256 + batch.size() * (64 + 4 * maxTokens))
                .append("{\"id\":\"cmpl-fake\",\"object\":\"text_completion\",\"model\":\"fake\",\"choices\":[");
        int promptTokens = 0;
        for (int i = 0; i < batch.size(); i++) {
            int words = Math.max(1, batch.get(i).strip().split("\\s+").length);
            promptTokens += words;
            if (i > 0) {
                json.append(',');
            }
            json.append("{\"index\":").append(i).append(",\"text\":\"").append(" ok".repeat(maxTokens))
                    .append("\",\"finish_reason\":\"length\",\"prompt_token_ids\":").append(ids(words))
                    .append(",\"token_ids\":").append(ids(maxTokens)).append('}');
        }
        int completionTokens = maxTokens * batch.size();
        json.append("],\"usage\":{\"prompt_tokens\":").append(promptTokens)
                .append(",\"completion_tokens\":").append(completionTokens)
                .append(",\"total_tokens\":").append(promptTokens + completionTokens).append("}}");
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        send(exchange, 200, json.toString());
    }

    static void embed(HttpExchange exchange, Duration latency) throws IOException {
        String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        List<String> inputs = stringsOf(body, "\"input\"");
        int dimensions = intField(body, "\"dimensions\"", 8);
        calls.incrementAndGet();
        prompts.addAndGet(inputs.size());
        try {
            Thread.sleep(latency);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        StringBuilder json = new StringBuilder(128 + inputs.size() * (48 + 12 * dimensions)).append("{\"object\":\"list\",\"data\":[");
        int promptTokens = 0;
        for (int i = 0; i < inputs.size(); i++) {
            promptTokens += Math.max(1, inputs.get(i).strip().split("\\s+").length) + 2;
            var random = new java.util.Random(inputs.get(i).hashCode());
            json.append(i == 0 ? "" : ",").append("{\"index\":").append(i).append(",\"object\":\"embedding\",\"embedding\":[");
            for (int d = 0; d < dimensions; d++) {
                json.append(d == 0 ? "" : ",").append(random.nextFloat() * 2 - 1);
            }
            json.append("]}");
        }
        json.append("],\"model\":\"fake\",\"usage\":{\"prompt_tokens\":").append(promptTokens)
                .append(",\"total_tokens\":").append(promptTokens).append("}}");
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        send(exchange, 200, json.toString());
    }

    static void stream(HttpExchange exchange, List<String> batch, int maxTokens, Duration latency, long perTokenMicros)
            throws IOException {
        try {
            Thread.sleep(latency);
            exchange.getResponseHeaders().set("Content-Type", "text/event-stream");
            exchange.sendResponseHeaders(200, 0);
            try (OutputStream out = exchange.getResponseBody()) {
                for (int token = 1; token <= maxTokens; token++) {
                    if (token > 1 && perTokenMicros > 0) {
                        Thread.sleep(Duration.ofNanos(perTokenMicros * 1000));
                    }
                    StringBuilder chunks = new StringBuilder();
                    for (int i = 0; i < batch.size(); i++) {
                        int words = Math.max(1, batch.get(i).strip().split("\\s+").length);
                        chunks.append("data: {\"id\":\"cmpl-fake\",\"object\":\"text_completion\",\"choices\":[{\"index\":")
                                .append(i).append(",\"text\":\" ok\",\"finish_reason\":")
                                .append(token == maxTokens ? "\"length\"" : "null")
                                .append("}],\"usage\":{\"prompt_tokens\":").append(words)
                                .append(",\"completion_tokens\":").append(token)
                                .append(",\"total_tokens\":").append(words + token).append("}}\n\n");
                    }
                    out.write(chunks.toString().getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
                out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static String ids(int count) {
        StringBuilder ids = new StringBuilder(count * 4).append('[');
        for (int i = 0; i < count; i++) {
            ids.append(i == 0 ? "" : ",").append(100 + i % 900);
        }
        return ids.append(']').toString();
    }

    /** The strings of "prompt", which is a string or an array of strings; enough JSON for what the gateway sends. */
    static List<String> promptsOf(String body) {
        return stringsOf(body, "\"prompt\"");
    }

    /** The strings of a field that is a string or an array of strings. */
    static List<String> stringsOf(String body, String field) {
        int at = body.indexOf(field);
        at = body.indexOf(':', at) + 1;
        while (Character.isWhitespace(body.charAt(at))) {
            at++;
        }
        List<String> found = new ArrayList<>();
        boolean list = body.charAt(at) == '[';
        if (list) {
            at++;
        }
        while (true) {
            while (body.charAt(at) != '"' && body.charAt(at) != ']') {
                at++;
            }
            if (body.charAt(at) == ']') {
                return found;
            }
            StringBuilder text = new StringBuilder();
            for (at++; body.charAt(at) != '"'; at++) {
                char c = body.charAt(at);
                if (c == '\\') {
                    at++;
                    c = body.charAt(at) == 'n' ? '\n' : body.charAt(at) == 'u' ? '?' : body.charAt(at);
                    if (body.charAt(at) == 'u') {
                        at += 4;
                    }
                }
                text.append(c);
            }
            at++;
            found.add(text.toString());
            if (!list) {
                return found;
            }
        }
    }

    static int intField(String body, String name, int fallback) {
        int at = body.indexOf(name);
        if (at < 0) {
            return fallback;
        }
        at = body.indexOf(':', at) + 1;
        int end = at;
        while (end < body.length() && (Character.isDigit(body.charAt(end)) || Character.isWhitespace(body.charAt(end)))) {
            end++;
        }
        return Integer.parseInt(body.substring(at, end).strip());
    }

    static void send(HttpExchange exchange, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }
}
