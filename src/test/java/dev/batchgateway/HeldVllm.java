package dev.batchgateway;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A vLLM that holds every {@code POST /v1/completions} until {@link #release()}: a slow worker with as many calls in
 * flight as the gateway sends, each on a virtual thread (the JDK's HttpServer, a backlog of 4,096). It answers vLLM's
 * identity ({@code GET /version}), {@code /health} and {@code /v1/models} at once, held calls or not, and counts the
 * prompts it holds and the most calls it held at once. A streamed call ({@code "stream": true}) is answered as vLLM
 * streams: one chunk per prompt with its running usage, then {@code [DONE]}.
 */
final class HeldVllm implements AutoCloseable {

    private static final JsonMapper JSON = JsonMapper.builder().build();
    /** A safety net only: a test that never releases still ends. */
    private static final long MAX_HOLD_SECONDS = 120;

    private final String model;
    private final HttpServer server;
    private final ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
    private volatile CountDownLatch released = new CountDownLatch(1);
    private final AtomicInteger heldPrompts = new AtomicInteger();
    private final AtomicInteger callsNow = new AtomicInteger();
    private final AtomicInteger mostCalls = new AtomicInteger();

    HeldVllm(String model) {
        this.model = model;
        try {
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 4096);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        server.setExecutor(threads);
        server.createContext("/health", exchange -> send(exchange, 200, ""));
        server.createContext("/version", exchange -> send(exchange, 200, "{\"version\":\"0.11.0\"}"));
        server.createContext("/v1/models", exchange -> send(exchange, 200,
                "{\"object\":\"list\",\"data\":[{\"id\":\"" + model + "\",\"object\":\"model\",\"owned_by\":\"vllm\"}]}"));
        server.createContext("/v1/completions", this::complete);
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** Prompts of the calls held now. */
    int heldPrompts() {
        return heldPrompts.get();
    }

    /** The most calls held at once. */
    int mostCallsAtOnce() {
        return mostCalls.get();
    }

    /** Answers every call held, and every later one at once. */
    void release() {
        released.countDown();
    }

    /** Holds calls again from now on, until the next {@link #release()}. */
    void hold() {
        released = new CountDownLatch(1);
    }

    private void complete(HttpExchange exchange) throws IOException {
        JsonNode body = JSON.readTree(exchange.getRequestBody().readAllBytes());
        JsonNode prompt = body.get("prompt");
        int prompts = prompt.isArray() ? prompt.size() : 1;
        mostCalls.accumulateAndGet(callsNow.incrementAndGet(), Math::max);
        heldPrompts.addAndGet(prompts);
        try {
            released.await(MAX_HOLD_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            heldPrompts.addAndGet(-prompts);
            callsNow.decrementAndGet();
        }
        if (body.path("stream").asBoolean()) {
            streamed(exchange, prompts);
            return;
        }
        ObjectNode answer = JSON.createObjectNode().put("id", "cmpl-held").put("object", "text_completion").put("model", model);
        ArrayNode choices = answer.putArray("choices");
        for (int i = 0; i < prompts; i++) {
            ObjectNode choice = choices.addObject().put("index", i).put("text", " done").put("finish_reason", "length");
            choice.putArray("prompt_token_ids").add(1).add(2);
            choice.putArray("token_ids").add(3);
        }
        answer.putObject("usage").put("prompt_tokens", 2 * prompts).put("completion_tokens", prompts)
                .put("total_tokens", 3 * prompts);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        send(exchange, 200, JSON.writeValueAsString(answer));
    }

    /** Each prompt's whole text in one chunk, with its usage (vLLM's {@code continuous_usage_stats}), then the end. */
    private void streamed(HttpExchange exchange, int prompts) throws IOException {
        StringBuilder events = new StringBuilder();
        for (int i = 0; i < prompts; i++) {
            ObjectNode chunk = JSON.createObjectNode().put("id", "cmpl-held").put("object", "text_completion").put("model", model);
            chunk.putArray("choices").addObject().put("index", i).put("text", " done").putNull("logprobs").put("finish_reason", "length");
            chunk.putObject("usage").put("prompt_tokens", 2).put("completion_tokens", 1).put("total_tokens", 3);
            events.append("data: ").append(JSON.writeValueAsString(chunk)).append("\n\n");
        }
        events.append("data: [DONE]\n\n");
        exchange.getResponseHeaders().set("Content-Type", "text/event-stream");
        send(exchange, 200, events.toString());
    }

    private static void send(HttpExchange exchange, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
        try (var out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    @Override
    public void close() {
        release();
        server.stop(0);
        threads.close();
    }
}
