package dev.batchgateway.worker;

import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * A kind of worker the gateway can speak to, by the name {@code GATEWAY_WORKER_TYPE} (or a model's {@code type}) gives
 * it: its label in messages, how many batches one server of it takes at once unless configured, an example base URL,
 * and how one of its servers is reached. The server's health check is that server's {@link RemoteWorker#health()}.
 * A new kind of server is one more entry in {@link #KINDS}.
 */
public final class WorkerKind {

    /** Reaches one server of a kind: its endpoint (URL, key, timeouts), the model it serves, and where retries are counted. */
    interface Server {
        RemoteWorker connect(WorkerEndpoint endpoint, String model, WorkerRetries retries);
    }

    static final WorkerKind SIMULATED = new WorkerKind("simulated", "simulated", 32, "", null);

    private static final List<WorkerKind> KINDS = List.of(
            SIMULATED,
            openAi("vllm", "vLLM", 32, "http://localhost:8000", Dialect.VLLM),
            /* llama-server: its HTTP threads (10 by default) are shared by batches and health checks. */
            openAi("llamacpp", "llama.cpp", 4, "http://localhost:8080", Dialect.LLAMA_CPP),
            openAi("sglang", "SGLang", 32, "http://localhost:30000", Dialect.SGLANG),
            /* One call per prompt, under TGI's --max-concurrent-requests (128 by default) at a batch size of 8. */
            openAi("tgi", "TGI", 8, "http://localhost:3000", Dialect.TGI),
            /* Any other OpenAI-compatible server: one call per prompt. */
            openAi("openai", "OpenAI-compatible", 8, "http://localhost:8000", Dialect.OPENAI),
            new WorkerKind("ollama", "Ollama", 1, "http://localhost:11434", (endpoint, model, retries) -> new OllamaWorker(endpoint, model)));

    private final String name;
    private final String label;
    private final int defaultConcurrentBatches;
    private final String exampleUrl;
    private final Server server;

    private WorkerKind(String name, String label, int defaultConcurrentBatches, String exampleUrl, Server server) {
        this.name = name;
        this.label = label;
        this.defaultConcurrentBatches = defaultConcurrentBatches;
        this.exampleUrl = exampleUrl;
        this.server = server;
    }

    private static WorkerKind openAi(String name, String label, int defaultConcurrentBatches, String exampleUrl, Dialect dialect) {
        return new WorkerKind(name, label, defaultConcurrentBatches, exampleUrl,
                (endpoint, model, retries) -> new OpenAiWorker(endpoint, model, dialect, retries));
    }

    /**
     * The kind of this name, read as Spring reads an enum's: case and punctuation aside ({@code vLLM}, {@code llama-cpp});
     * null for none given.
     *
     * @throws IllegalArgumentException naming the kinds there are, for a name that is none of them
     */
    public static WorkerKind named(String name) {
        if (name == null || name.isBlank()) {
            return null;
        }
        String wanted = name.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]", "");
        return KINDS.stream().filter(kind -> kind.name.equals(wanted)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("set it to one of " + names(", ")));
    }

    /** Every kind's name, in the registry's order, joined by the separator. */
    public static String names(String separator) {
        return KINDS.stream().map(WorkerKind::name).collect(Collectors.joining(separator));
    }

    public String name() {
        return name;
    }

    /** How the server calls itself, for messages: vLLM, llama.cpp, Ollama. */
    public String label() {
        return label;
    }

    /** Batches one server of this kind takes at once when {@code GATEWAY_WORKER_MAX_CONCURRENT_BATCHES} is not set. */
    public int defaultConcurrentBatches() {
        return defaultConcurrentBatches;
    }

    public String exampleUrl() {
        return exampleUrl;
    }

    /** The simulation needs no server and no URL. */
    public boolean simulated() {
        return server == null;
    }

    RemoteWorker connect(WorkerEndpoint endpoint, String model, WorkerRetries retries) {
        return server.connect(endpoint, model, retries);
    }

    @Override
    public String toString() {
        return name;
    }
}
