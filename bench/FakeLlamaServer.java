import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A stand-in for llama.cpp's llama-server, for benchmarks, answering as the recorded one does
 * (shared/realworker/llama-server-exchanges.md) and as its {@code tools/server/server.cpp} of 2025-10 writes:
 * {@code GET /health} {@code {"status":"ok"}}; {@code GET /props} its settings ({@code default_generation_settings},
 * {@code total_slots}, …); {@code GET /v1/models} the model {@code fake} (as with {@code --alias fake}), owned by
 * {@code llamacpp}; {@code POST /tokenize} {@code {"tokens":[…]}}, one token a word; {@code POST /v1/completions} with
 * a string prompt (or a list of one): one {@code text_completion} object, with a list: a JSON array of complete
 * answers, one per prompt, {@code choices[0].index} its position, each with its own {@code usage}. Any {@code model}
 * is served. Not streamed, no {@code --api-key}, no context limit.
 *
 * <p>Its HTTP server has a fixed pool of threads, 10 by default as llama-server's {@code --threads-http}, which serve
 * every path: at most that many calls are served at once, the others wait. A completion takes a fixed latency
 * whatever its number of prompts, as a GPU's continuous batching does. Unlike llama-server (cpp-httplib gives a thread
 * to a kept-alive connection until it closes) a waiting call is served by the next free thread, so connections beyond
 * the pool wait in turn instead of starving: the same throughput, kinder tail latencies for the direct path.
 *
 * <p>{@code GET /stats} answers "calls prompts peak": completion calls, prompts in them, and the most calls
 * served at once since the last {@code /stats}. Run it with {@code java bench/FakeLlamaServer.java PORT LATENCY_MS [HTTP_THREADS]} on Java 22 or later (it
 * uses {@link FakeVllm}'s JSON readers, found beside it).
 */
public class FakeLlamaServer {

    static final String MODEL = "fake";
    static final AtomicLong calls = new AtomicLong();
    static final AtomicLong prompts = new AtomicLong();
    static final AtomicInteger serving = new AtomicInteger();
    static final AtomicInteger peak = new AtomicInteger();

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(args[0]);
        Duration latency = Duration.ofMillis(Long.parseLong(args[1]));
        int threads = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 4096);
        server.setExecutor(Executors.newFixedThreadPool(threads));
        server.createContext("/health", exchange -> json(exchange, 200, "{\"status\":\"ok\"}"));
        server.createContext("/props", exchange -> json(exchange, 200, props(threads)));
        server.createContext("/v1/models", exchange -> json(exchange, 200, models()));
        server.createContext("/tokenize", FakeLlamaServer::tokenize);
        server.createContext("/v1/completions", exchange -> complete(exchange, latency));
        server.createContext("/stats", exchange -> FakeVllm.send(exchange, 200,
                calls.get() + " " + prompts.get() + " " + peak.getAndSet(serving.get())));
        server.start();
        System.out.println("fake llama-server on 127.0.0.1:" + port + ", latency " + latency.toMillis() + " ms a call, "
                + threads + " HTTP threads");
    }

    static void complete(HttpExchange exchange, Duration latency) throws IOException {
        int now = serving.incrementAndGet();
        peak.accumulateAndGet(now, Math::max);
        try {
            String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
            if (body.contains("\"stream\":true")) {
                json(exchange, 400, error("this fake does not stream", "invalid_request_error", 400));
                return;
            }
            List<String> batch = FakeVllm.promptsOf(body);
            int maxTokens = FakeVllm.intField(body, "\"max_tokens\"", 16);
            String model = stringField(body, "\"model\"", MODEL);
            calls.incrementAndGet();
            prompts.addAndGet(batch.size());
            Thread.sleep(latency);
            if (batch.size() == 1) {
                json(exchange, 200, answer(batch.getFirst(), 0, maxTokens, model));
                return;
            }
            StringBuilder answers = new StringBuilder(batch.size() * (600 + 3 * maxTokens)).append('[');
            for (int i = 0; i < batch.size(); i++) {
                answers.append(i == 0 ? "" : ",").append(answer(batch.get(i), i, maxTokens, model));
            }
            json(exchange, 200, answers.append(']').toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            serving.decrementAndGet();
        }
    }

    /** One prompt's complete answer, as llama-server writes it: its own choice, usage and timings. */
    static String answer(String prompt, int index, int maxTokens, String model) {
        int promptTokens = words(prompt);
        return "{\"choices\":[{\"text\":\"" + " ok".repeat(maxTokens) + "\",\"index\":" + index
                + ",\"logprobs\":null,\"finish_reason\":\"length\"}],\"created\":" + System.currentTimeMillis() / 1000
                + ",\"model\":\"" + model + "\",\"system_fingerprint\":\"b0-unknown\",\"object\":\"text_completion\""
                + ",\"usage\":{\"completion_tokens\":" + maxTokens + ",\"prompt_tokens\":" + promptTokens
                + ",\"total_tokens\":" + (promptTokens + maxTokens) + "},\"id\":\"chatcmpl-fake\",\"timings\":{\"cache_n\":0"
                + ",\"prompt_n\":" + promptTokens + ",\"prompt_ms\":1.0,\"predicted_n\":" + maxTokens
                + ",\"predicted_ms\":1.0}}";
    }

    static void tokenize(HttpExchange exchange) throws IOException {
        String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        int count = body.contains("\"content\"") ? words(stringField(body, "\"content\"", "")) : 0;
        json(exchange, 200, "{\"tokens\":" + FakeVllm.ids(count) + "}");
    }

    /** {@code handle_props}' fields; {@code params} cut to a few of its sampling settings. */
    static String props(int threads) {
        return "{\"default_generation_settings\":{\"params\":{\"n_predict\":-1,\"temperature\":0.8,\"top_k\":40,"
                + "\"top_p\":0.95,\"seed\":4294967295},\"n_ctx\":4096},\"total_slots\":" + threads
                + ",\"model_alias\":\"" + MODEL + "\",\"model_path\":\"models/fake.gguf\","
                + "\"modalities\":{\"vision\":false,\"audio\":false},\"endpoint_slots\":true,\"endpoint_props\":false,"
                + "\"endpoint_metrics\":false,\"webui\":true,\"chat_template\":\"\",\"bos_token\":\"<s>\","
                + "\"eos_token\":\"</s>\",\"build_info\":\"b0-unknown\"}";
    }

    /** {@code handle_models}: Ollama's {@code models} beside OpenAI's {@code data}; the id is the alias. */
    static String models() {
        return "{\"models\":[{\"name\":\"" + MODEL + "\",\"model\":\"" + MODEL + "\",\"modified_at\":\"\",\"size\":\"\","
                + "\"digest\":\"\",\"type\":\"model\",\"description\":\"\",\"tags\":[\"\"],\"capabilities\":[\"completion\"],"
                + "\"parameters\":\"\",\"details\":{\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"\",\"families\":[\"\"],"
                + "\"parameter_size\":\"\",\"quantization_level\":\"\"}}],\"object\":\"list\",\"data\":[{\"id\":\"" + MODEL
                + "\",\"object\":\"model\",\"created\":" + System.currentTimeMillis() / 1000 + ",\"owned_by\":\"llamacpp\","
                + "\"meta\":{\"vocab_type\":1,\"n_vocab\":512,\"n_ctx_train\":512,\"n_embd\":64,\"n_params\":260000,"
                + "\"size\":1185376}}]}";
    }

    static String error(String message, String type, int code) {
        return "{\"error\":{\"code\":" + code + ",\"message\":\"" + message + "\",\"type\":\"" + type + "\"}}";
    }

    static int words(String text) {
        return Math.max(1, text.strip().split("\\s+").length);
    }

    /** A string field's value, without escapes (enough for what the gateway sends); the fallback when absent. */
    static String stringField(String body, String name, String fallback) {
        int at = body.indexOf(name);
        if (at < 0) {
            return fallback;
        }
        int start = body.indexOf('"', body.indexOf(':', at) + 1) + 1;
        int end = start;
        while (body.charAt(end) != '"') {
            end += body.charAt(end) == '\\' ? 2 : 1;
        }
        return body.substring(start, end);
    }

    static void json(HttpExchange exchange, int status, String body) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        exchange.getResponseHeaders().set("Server", "llama.cpp");
        FakeVllm.send(exchange, status, body);
    }
}
