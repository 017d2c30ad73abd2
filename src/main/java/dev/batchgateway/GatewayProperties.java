package dev.batchgateway;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * Everything the gateway is configured with, bound from {@code gateway.*} (environment variables {@code GATEWAY_*},
 * see application.yml and the README). Each record checks its values, so a bad setting stops start-up with a message
 * naming the variable to fix.
 */
@ConfigurationProperties("gateway")
public record GatewayProperties(
        Batch batch,
        int queueCapacity,
        Duration requestTimeout,
        Worker worker,
        List<Model> models,
        int maxTokens,
        int maxPromptChars,
        Simulated simulated,
        Usage usage) {

    public GatewayProperties {
        require(batch != null && worker != null && simulated != null && usage != null,
                "gateway.batch, gateway.worker, gateway.simulated and gateway.usage must be configured");
        require(queueCapacity >= 1, "GATEWAY_QUEUE_CAPACITY must be at least 1, was " + queueCapacity);
        requirePositive(requestTimeout, "GATEWAY_REQUEST_TIMEOUT");
        require(maxTokens >= 1, "GATEWAY_MAX_TOKENS must be at least 1, was " + maxTokens);
        require(maxPromptChars >= 1, "GATEWAY_MAX_PROMPT_CHARS must be at least 1, was " + maxPromptChars);
        models = models == null ? List.of() : List.copyOf(models);
        Set<String> names = new HashSet<>();
        names.add(defaultModel(worker));
        for (int i = 0; i < models.size(); i++) {
            models.get(i).check("GATEWAY_MODELS_" + i + "_");
            require(names.add(models.get(i).name()), "GATEWAY_MODELS_" + i + "_NAME names model " + models.get(i).name()
                    + " a second time: each model is served by one pool");
        }
    }

    /**
     * The models the gateway serves, the default first: {@code GATEWAY_WORKER_MODEL} (or {@code simulated} for the
     * simulated worker), then those of {@code GATEWAY_MODELS_<i>_NAME}.
     */
    public List<String> servedModels() {
        List<String> served = new ArrayList<>();
        served.add(defaultModel(worker));
        models.forEach(model -> served.add(model.name()));
        return List.copyOf(served);
    }

    private static String defaultModel(Worker worker) {
        return worker.type() == WorkerType.SIMULATED ? "simulated" : worker.model();
    }

    /** Batches in flight at once on one worker of this type: as configured, or the default for the worker type. */
    public int maxConcurrentBatchesPerWorker(WorkerType type) {
        return worker.maxConcurrentBatches() != null ? worker.maxConcurrentBatches() : type.defaultConcurrentBatches;
    }

    /** Batches in flight at once on one worker of the default model. */
    public int maxConcurrentBatchesPerWorker() {
        return maxConcurrentBatchesPerWorker(worker.type());
    }

    static final long ANSWER_BYTES_PER_TOKEN = 4096;
    static final long ANSWER_BYTES_PER_PROMPT_CHAR = 8;

    /**
     * The most of one worker answer the gateway reads ({@code GATEWAY_WORKER_MAX_ANSWER_BYTES}); a larger answer fails its
     * batch with 502. Unset, it is {@value #ANSWER_BYTES_PER_TOKEN} bytes for each token a batch may generate
     * (batch size × max tokens) plus {@value #ANSWER_BYTES_PER_PROMPT_CHAR} for each character its prompts may have
     * (batch size × max prompt chars): about ten times a streamed answer's ~300 bytes a token, plus a prompt echoed as
     * token ids (vLLM's {@code prompt_token_ids}, about 7 bytes a token), so that no real answer comes near it; 10 MiB
     * with the defaults.
     */
    public long maxAnswerBytes() {
        if (worker.maxAnswerBytes() != null) {
            return worker.maxAnswerBytes().toBytes();
        }
        long perPrompt = Math.addExact(Math.multiplyExact((long) maxTokens, ANSWER_BYTES_PER_TOKEN),
                Math.multiplyExact((long) maxPromptChars, ANSWER_BYTES_PER_PROMPT_CHAR));
        return Math.multiplyExact(perPrompt, batch.size());
    }

    /** Batches in flight at once in the whole gateway: the per-worker limit times the number of workers, every model's. */
    public int maxConcurrentBatches() {
        int total = Math.multiplyExact(maxConcurrentBatchesPerWorker(), Math.max(1, worker.url().size()));
        for (Model model : models) {
            total = Math.addExact(total, Math.multiplyExact(maxConcurrentBatchesPerWorker(model.type()), Math.max(1, model.url().size())));
        }
        return total;
    }

    /**
     * A further model behind the gateway ({@code GATEWAY_MODELS_<i>_…}): its name (what clients send, and what its
     * servers serve), its worker type, its servers and their API key. Timeouts, back-off and limits are those of
     * {@code GATEWAY_WORKER_…}; without a key of its own it uses {@code GATEWAY_WORKER_API_KEY}.
     */
    public record Model(String name, WorkerType type, List<String> url, String apiKey) {
        public Model {
            name = name == null || name.isBlank() ? null : name.strip();
            url = url == null ? List.of() : url.stream().map(String::strip).filter(u -> !u.isEmpty()).toList();
            apiKey = apiKey == null || apiKey.isBlank() ? null : apiKey.strip();
        }

        private void check(String variables) {
            require(name != null, variables + "NAME is not set: name the model, as its servers and the clients call it");
            require(type != null, variables + "TYPE is not set: set it to simulated, vllm or ollama");
            if (type != WorkerType.SIMULATED) {
                require(!url.isEmpty(), variables + "URL is not set: give the base URL of the " + type.label + " server, e.g. "
                        + type.exampleUrl);
                for (String base : url) {
                    require(isBaseUrl(base),
                            variables + "URL must list http:// or https:// base URLs with a host name (e.g. http://gpu1:8000), was " + base);
                }
            }
        }

        /** Never shows the API key. */
        @Override
        public String toString() {
            return "Model[name=" + name + ", type=" + type + ", url=" + url + ", apiKey=" + (apiKey == null ? "none" : "(secret)") + "]";
        }
    }

    public record Batch(int size, Duration maxWait) {
        public Batch {
            require(size >= 1, "GATEWAY_BATCH_SIZE must be at least 1, was " + size);
            require(maxWait != null && !maxWait.isNegative(), "GATEWAY_BATCH_MAX_WAIT must not be negative, was " + maxWait);
        }
    }

    public record Worker(
            WorkerType type,
            List<String> url,
            String model,
            Duration timeout,
            Duration connectTimeout,
            Duration backOff,
            Integer maxConcurrentBatches,
            String apiKey,
            Duration idleTimeout,
            int maxConsecutiveTimeouts,
            DataSize maxAnswerBytes) {
        public Worker {
            require(type != null, "GATEWAY_WORKER_TYPE is not set: set it to simulated, vllm, llamacpp, sglang, tgi, openai or ollama");
            url = url == null ? List.of() : url.stream().map(String::strip).filter(u -> !u.isEmpty()).toList();
            model = model == null || model.isBlank() ? null : model.strip();
            requirePositive(timeout, "GATEWAY_WORKER_TIMEOUT");
            requirePositive(connectTimeout, "GATEWAY_WORKER_CONNECT_TIMEOUT");
            requirePositive(backOff, "GATEWAY_WORKER_BACK_OFF");
            require(maxConcurrentBatches == null || maxConcurrentBatches >= 1,
                    "GATEWAY_WORKER_MAX_CONCURRENT_BATCHES must be at least 1, was " + maxConcurrentBatches);
            apiKey = apiKey == null || apiKey.isBlank() ? null : apiKey.strip();
            require(idleTimeout != null && idleTimeout.toSeconds() >= 1,
                    "GATEWAY_WORKER_IDLE_TIMEOUT must be at least 1s (keep it below the server's keep-alive, 5s for vLLM), was "
                            + idleTimeout);
            require(maxConsecutiveTimeouts >= 1,
                    "GATEWAY_WORKER_MAX_CONSECUTIVE_TIMEOUTS must be at least 1, was " + maxConsecutiveTimeouts);
            require(maxAnswerBytes == null || maxAnswerBytes.toBytes() >= MIN_ANSWER_SIZE.toBytes(),
                    "GATEWAY_WORKER_MAX_ANSWER_BYTES must be at least 64KB (a worker's model list and error answers must fit; "
                            + "e.g. 16MB), or empty for the default, was " + maxAnswerBytes);
            if (type != WorkerType.SIMULATED) {
                require(!url.isEmpty(), "GATEWAY_WORKER_URL is not set: give the base URL of the " + type.label + " server, e.g. "
                        + type.exampleUrl);
                require(model != null, "GATEWAY_WORKER_MODEL is not set: name the model the " + type.label + " server serves");
                for (String base : url) {
                    require(isBaseUrl(base),
                            "GATEWAY_WORKER_URL must list http:// or https:// base URLs with a host name (e.g. http://gpu1:8000), was " + base);
                }
            }
        }

        private static final DataSize MIN_ANSWER_SIZE = DataSize.ofKilobytes(64);

        /** Never shows the API key: records print every component, and settings end up in logs and failure reports. */
        @Override
        public String toString() {
            return "Worker[type=" + type + ", url=" + url + ", model=" + model + ", apiKey=" + (apiKey == null ? "none" : "(secret)")
                    + ", timeout=" + timeout + "]";
        }
    }

    public enum WorkerType {
        SIMULATED("simulated", 32, ""),
        VLLM("vLLM", 32, "http://localhost:8000"),
        /** llama-server: its HTTP threads (10 by default) are shared by batches and health checks. */
        LLAMACPP("llama.cpp", 4, "http://localhost:8080"),
        SGLANG("SGLang", 32, "http://localhost:30000"),
        /** One call per prompt, under TGI's --max-concurrent-requests (128 by default) at a batch size of 8. */
        TGI("TGI", 8, "http://localhost:3000"),
        /** Any other OpenAI-compatible server: one call per prompt. */
        OPENAI("OpenAI-compatible", 8, "http://localhost:8000"),
        OLLAMA("Ollama", 1, "http://localhost:11434");

        final String label;
        final int defaultConcurrentBatches;
        final String exampleUrl;

        WorkerType(String label, int defaultConcurrentBatches, String exampleUrl) {
            this.label = label;
            this.defaultConcurrentBatches = defaultConcurrentBatches;
            this.exampleUrl = exampleUrl;
        }
    }

    public record Simulated(Duration latency) {
        public Simulated {
            require(latency != null && !latency.isNegative(), "GATEWAY_SIMULATED_LATENCY must not be negative, was " + latency);
        }
    }

    /**
     * @param retention how long usage rows are kept, whole months at a time (their totals stay in the daily rollups);
     *     null keeps them forever
     * @param journalDir where each instance keeps, in a directory of its own, the usage rows written while the
     *     database is away; a dead instance's directory is replayed by the next instance started with the same one
     * @param journalMaxSize the most an instance's journal holds; when it is full, completions get 503
     */
    public record Usage(int bufferCapacity, Duration retention, String journalDir, DataSize journalMaxSize) {
        public Usage {
            require(bufferCapacity >= 1, "GATEWAY_USAGE_BUFFER_CAPACITY must be at least 1, was " + bufferCapacity);
            require(retention == null || retention.compareTo(Duration.ofDays(1)) >= 0,
                    "GATEWAY_USAGE_RETENTION must be at least 1d (e.g. 400d), or empty to keep usage rows forever, was " + retention);
            require(journalDir != null && !journalDir.isBlank(),
                    "GATEWAY_USAGE_JOURNAL_DIR must name a directory the gateway can write (e.g. /var/lib/batch-gateway/usage-journal)");
            require(journalMaxSize != null && journalMaxSize.toBytes() >= MIN_JOURNAL_SIZE.toBytes(),
                    "GATEWAY_USAGE_JOURNAL_MAX_SIZE must be at least 1KB (e.g. 256MB), was " + journalMaxSize);
        }

        private static final DataSize MIN_JOURNAL_SIZE = DataSize.ofKilobytes(1);
    }

    /**
     * An http:// or https:// URL with a host, that the worker calls can be built on (a URL that cannot be parsed would
     * fail every call with an error quoting it to the caller).
     */
    private static boolean isBaseUrl(String url) {
        if (!url.startsWith("http://") && !url.startsWith("https://")) {
            return false;
        }
        try {
            return java.net.URI.create(url).getHost() != null;
        } catch (IllegalArgumentException malformed) {
            return false;
        }
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new InvalidConfigurationException(message);
        }
    }

    private static void requirePositive(Duration duration, String variable) {
        require(duration != null && duration.isPositive(), variable + " must be a positive duration (e.g. 30s), was " + duration);
    }
}
