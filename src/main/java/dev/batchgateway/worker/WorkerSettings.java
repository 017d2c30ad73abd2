package dev.batchgateway.worker;

import dev.batchgateway.settings.InvalidConfigurationException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * The workers' settings, bound from {@code gateway.*}: the models the gateway serves and the servers behind each. One
 * list, the default model first: the model of {@code GATEWAY_WORKER_…} when {@code GATEWAY_WORKER_TYPE} is set (the
 * one-model case), then those of {@code GATEWAY_MODELS_<i>_…}; without {@code GATEWAY_WORKER_TYPE}, {@code
 * GATEWAY_MODELS_0_…} is the default. What a model does not set itself (timeout, concurrency, API key) is {@code
 * GATEWAY_WORKER_…}'s. The batch size and a request's most tokens and prompt characters are read too, to size the
 * answer cap. Each record checks its values, so a bad setting stops start-up with a message naming the variable.
 */
@ConfigurationProperties("gateway")
public record WorkerSettings(Worker worker, List<Model> models, Simulated simulated, Batch batch, int maxTokens, int maxPromptChars) {

    static final long ANSWER_BYTES_PER_TOKEN = 4096;
    static final long ANSWER_BYTES_PER_PROMPT_CHAR = 8;

    public WorkerSettings {
        require(worker != null && simulated != null && batch != null,
                "gateway.worker, gateway.simulated and gateway.batch must be configured");
        require(maxTokens >= 1, "GATEWAY_MAX_TOKENS must be at least 1, was " + maxTokens);
        require(maxPromptChars >= 1, "GATEWAY_MAX_PROMPT_CHARS must be at least 1, was " + maxPromptChars);
        models = models == null ? List.of() : List.copyOf(models);
        if (worker.kind() == null) {
            require(!models.isEmpty(), "GATEWAY_WORKER_TYPE is not set: set it to " + kindsToChoose());
            require(worker.url().isEmpty() && worker.model() == null, "GATEWAY_WORKER_URL and GATEWAY_WORKER_MODEL need "
                    + "GATEWAY_WORKER_TYPE: set it, or leave them empty and configure the default model as GATEWAY_MODELS_0_…");
        }
        Set<String> names = new HashSet<>();
        if (worker.kind() != null) {
            names.add(worker.servedName());
        }
        for (int i = 0; i < models.size(); i++) {
            models.get(i).check("GATEWAY_MODELS_" + i + "_");
            require(names.add(models.get(i).name()), "GATEWAY_MODELS_" + i + "_NAME names model " + models.get(i).name()
                    + " a second time: each model is served by one pool");
        }
    }

    /** The models the gateway serves, each with its servers and settings: the default model first. */
    public List<ServedModel> served() {
        List<ServedModel> served = new ArrayList<>();
        if (worker.kind() != null) {
            served.add(new ServedModel(worker.servedName(), worker.kind(), worker.url(), worker.apiKey(), worker.timeout(),
                    concurrentBatches(worker.kind(), null), false));
        }
        for (Model model : models) {
            served.add(new ServedModel(model.name(), model.kind(), model.url(),
                    model.apiKey() != null ? model.apiKey() : worker.apiKey(),
                    model.timeout() != null ? model.timeout() : worker.timeout(),
                    concurrentBatches(model.kind(), model.maxConcurrentBatches()), model.embeds()));
        }
        return List.copyOf(served);
    }

    /** The models that embed ({@code GATEWAY_MODELS_<i>_TASK=embed}): they answer {@code /v1/embeddings} only. */
    public Set<String> embeddingModelNames() {
        Set<String> embedding = new HashSet<>();
        served().stream().filter(ServedModel::embeds).forEach(model -> embedding.add(model.name()));
        return Set.copyOf(embedding);
    }

    /** The names clients send, the default model first. */
    public List<String> modelNames() {
        return served().stream().map(ServedModel::name).toList();
    }

    /** Batches in flight at once in the whole gateway: each model's per-server limit times its servers (at least one). */
    public int maxConcurrentBatches() {
        int total = 0;
        for (ServedModel model : served()) {
            total = Math.addExact(total, Math.multiplyExact(model.maxConcurrentBatches(), Math.max(1, model.urls().size())));
        }
        return total;
    }

    /** The longest any model's worker call may take: the scheduler's own guard, beside each endpoint's timeout. */
    public Duration longestTimeout() {
        return served().stream().map(ServedModel::timeout).max(Duration::compareTo).orElse(worker.timeout());
    }

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

    private int concurrentBatches(WorkerKind kind, Integer own) {
        if (own != null) {
            return own;
        }
        return worker.maxConcurrentBatches() != null ? worker.maxConcurrentBatches() : kind.defaultConcurrentBatches();
    }

    /** "simulated, vllm, … or ollama". */
    private static String kindsToChoose() {
        String all = WorkerKind.names(", ");
        int last = all.lastIndexOf(", ");
        return all.substring(0, last) + " or " + all.substring(last + 2);
    }

    /**
     * A model the gateway serves, resolved: its name (what clients send, and what its servers serve), its kind of
     * server, their base URLs (none for the simulation), the API key they are sent, how long one call may take, how
     * many batches one of its servers takes at once, and whether it embeds rather than generates.
     */
    public record ServedModel(String name, WorkerKind kind, List<String> urls, String apiKey, Duration timeout,
            int maxConcurrentBatches, boolean embeds) {

        /** Never shows the API key. */
        @Override
        public String toString() {
            return "ServedModel[name=" + name + ", kind=" + kind + ", urls=" + urls + ", apiKey=" + (apiKey == null ? "none" : "(secret)")
                    + ", timeout=" + timeout + ", maxConcurrentBatches=" + maxConcurrentBatches + ", embeds=" + embeds + "]";
        }
    }

    /** Only the size is the workers' business: it sizes the answer cap. */
    public record Batch(int size) {
        public Batch {
            require(size >= 1, "GATEWAY_BATCH_SIZE must be at least 1, was " + size);
        }
    }

    /**
     * A model behind the gateway ({@code GATEWAY_MODELS_<i>_…}): its name, its kind of server ({@code TYPE}), its
     * servers ({@code URL}), and, each optional, their API key, the timeout of one call and the batches one server takes
     * at once; unset, those of {@code GATEWAY_WORKER_…} (the concurrency: else the kind's default); and its {@code
     * TASK}: {@code generate} (the default) or {@code embed}, for an embedding model that answers {@code /v1/embeddings}
     * only (vLLM {@code --runner pooling}, llama.cpp {@code --embeddings}, an Ollama embedding model).
     */
    public record Model(String name, String type, List<String> url, String apiKey, Duration timeout, Integer maxConcurrentBatches,
            String task) {
        static final String GENERATE = "generate";
        static final String EMBED = "embed";

        public Model {
            name = name == null || name.isBlank() ? null : name.strip();
            url = url == null ? List.of() : url.stream().map(String::strip).filter(u -> !u.isEmpty()).toList();
            apiKey = apiKey == null || apiKey.isBlank() ? null : apiKey.strip();
            task = task == null || task.isBlank() ? GENERATE : task.strip().toLowerCase(java.util.Locale.ROOT);
        }

        boolean embeds() {
            return task.equals(EMBED);
        }

        WorkerKind kind() {
            return WorkerKind.named(type);
        }

        private void check(String variables) {
            require(name != null, variables + "NAME is not set: name the model, as its servers and the clients call it");
            require(type != null && !type.isBlank(), variables + "TYPE is not set: set it to simulated, vllm or ollama");
            WorkerKind kind = kindOf(type, variables + "TYPE");
            require(timeout == null || timeout.isPositive(), variables + "TIMEOUT must be a positive duration (e.g. 30s), was " + timeout);
            require(maxConcurrentBatches == null || maxConcurrentBatches >= 1,
                    variables + "MAX_CONCURRENT_BATCHES must be at least 1, was " + maxConcurrentBatches);
            require(task.equals(GENERATE) || task.equals(EMBED),
                    variables + "TASK must be generate (the default) or embed, was " + task);
            if (!kind.simulated()) {
                require(!url.isEmpty(), variables + "URL is not set: give the base URL of the " + kind.label() + " server, e.g. "
                        + kind.exampleUrl());
                for (String base : url) {
                    require(isBaseUrl(base),
                            variables + "URL must list http:// or https:// base URLs with a host name (e.g. http://gpu1:8000), was " + base);
                }
            }
        }

        /** Never shows the API key. */
        @Override
        public String toString() {
            return "Model[name=" + name + ", type=" + type + ", url=" + url + ", apiKey=" + (apiKey == null ? "none" : "(secret)")
                    + ", task=" + task + "]";
        }
    }

    /**
     * {@code GATEWAY_WORKER_…}: the default model's kind, servers and name when {@code TYPE} is set, and what every
     * model's servers share: timeouts, back-off, concurrency, key, idle connections and the answer cap.
     *
     * @param maxBackOff the longest a server stays out of rotation between two health probes ({@code
     *     GATEWAY_WORKER_MAX_BACK_OFF}, default 1m); the back-off doubles from {@code backOff} up to it (a first back-off
 *     longer than it stays as it is)
     */
    public record Worker(
            String type,
            List<String> url,
            String model,
            Duration timeout,
            Duration connectTimeout,
            Duration backOff,
            Integer maxConcurrentBatches,
            String apiKey,
            Duration idleTimeout,
            int maxConsecutiveTimeouts,
            DataSize maxAnswerBytes,
            Duration maxBackOff) {
        public Worker {
            WorkerKind kind = kindOf(type, "GATEWAY_WORKER_TYPE");
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
            maxBackOff = maxBackOff == null ? DEFAULT_MAX_BACK_OFF : maxBackOff;
            requirePositive(maxBackOff, "GATEWAY_WORKER_MAX_BACK_OFF");
            if (kind != null && !kind.simulated()) {
                require(!url.isEmpty(), "GATEWAY_WORKER_URL is not set: give the base URL of the " + kind.label() + " server, e.g. "
                        + kind.exampleUrl());
                require(model != null, "GATEWAY_WORKER_MODEL is not set: name the model the " + kind.label() + " server serves");
                for (String base : url) {
                    require(isBaseUrl(base),
                            "GATEWAY_WORKER_URL must list http:// or https:// base URLs with a host name (e.g. http://gpu1:8000), was " + base);
                }
            }
        }

        static final Duration DEFAULT_MAX_BACK_OFF = Duration.ofMinutes(1);
        private static final DataSize MIN_ANSWER_SIZE = DataSize.ofKilobytes(64);

        /** The kind of {@code GATEWAY_WORKER_TYPE}; null when it is not set. */
        WorkerKind kind() {
            return WorkerKind.named(type);
        }

        /** The default model's name: {@code GATEWAY_WORKER_MODEL}, or {@code simulated} for the simulation. */
        String servedName() {
            return kind().simulated() ? SimulatedWorker.MODEL : model;
        }

        /** Never shows the API key: records print every component, and settings end up in logs and failure reports. */
        @Override
        public String toString() {
            return "Worker[type=" + type + ", url=" + url + ", model=" + model + ", apiKey=" + (apiKey == null ? "none" : "(secret)")
                    + ", timeout=" + timeout + "]";
        }
    }

    public record Simulated(Duration latency) {
        public Simulated {
            require(latency != null && !latency.isNegative(), "GATEWAY_SIMULATED_LATENCY must not be negative, was " + latency);
        }
    }

    /** The kind a setting names, or a message naming the setting and the kinds there are. */
    private static WorkerKind kindOf(String type, String variable) {
        try {
            return WorkerKind.named(type);
        } catch (IllegalArgumentException unknown) {
            throw new InvalidConfigurationException(variable + "=" + type.strip() + " is not valid: " + unknown.getMessage());
        }
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
