import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Steady load for deploy/cluster-check.sh: {@code connections} callers, each posting one {@code /complete} after the
 * other with the API keys in turn, until at least {@code minSeconds} have passed and the stop file exists (or
 * {@code maxSeconds} have passed). Unlike wrk it lets every request in flight finish before it stops, so that the
 * answers it counts are exactly the requests the gateways served: each 2xx answer's request_id goes to the ids file,
 * every other answer or transport error to the errors file. Prints one summary line. Dependency-free:
 * {@code java deploy/ClusterLoad.java URL KEYS_FILE CONNECTIONS MIN_SECONDS MAX_SECONDS STOP_FILE IDS_FILE ERRORS_FILE}
 */
public class ClusterLoad {

    private static final Pattern REQUEST_ID = Pattern.compile("\"request_id\"\\s*:\\s*\"([0-9a-f-]{36})\"");

    public static void main(String[] args) throws Exception {
        URI uri = URI.create(args[0] + "/complete");
        List<String> keys = Files.readAllLines(Path.of(args[1])).stream().filter(line -> !line.isBlank()).toList();
        int connections = Integer.parseInt(args[2]);
        long minNanos = Duration.ofSeconds(Long.parseLong(args[3])).toNanos();
        long maxNanos = Duration.ofSeconds(Long.parseLong(args[4])).toNanos();
        Path stopFile = Path.of(args[5]);
        Path idsFile = Path.of(args[6]);
        Path errorsFile = Path.of(args[7]);

        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        Queue<String> ids = new ConcurrentLinkedQueue<>();
        Queue<String> errors = new ConcurrentLinkedQueue<>();
        Map<String, AtomicLong> statuses = new ConcurrentHashMap<>();
        AtomicLong sequence = new AtomicLong();
        long started = System.nanoTime();
        var stopping = new java.util.concurrent.atomic.AtomicBoolean();
        Thread watcher = Thread.ofVirtual().start(() -> {
            while (true) {
                long elapsed = System.nanoTime() - started;
                if (elapsed >= maxNanos || (elapsed >= minNanos && Files.exists(stopFile))) {
                    stopping.set(true);
                    return;
                }
                try {
                    Thread.sleep(100); // polls a file: the script's signal that the rolling restart is over
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        try (var callers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int c = 0; c < connections; c++) {
                callers.execute(() -> {
                    while (!stopping.get()) {
                        long n = sequence.incrementAndGet();
                        String key = keys.get((int) (n % keys.size()));
                        var request = HttpRequest.newBuilder(uri)
                                .header("Content-Type", "application/json")
                                .header("Authorization", "Bearer " + key)
                                .timeout(Duration.ofSeconds(150))
                                .POST(HttpRequest.BodyPublishers.ofString(
                                        "{\"prompt\": \"cluster check request " + n + "\", \"max_tokens\": 16}"))
                                .build();
                        try {
                            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
                            statuses.computeIfAbsent(Integer.toString(response.statusCode()), s -> new AtomicLong()).incrementAndGet();
                            Matcher id = REQUEST_ID.matcher(response.body());
                            if (response.statusCode() / 100 == 2 && id.find()) {
                                ids.add(id.group(1));
                            } else {
                                errors.add(response.statusCode() + " " + response.body().replaceAll("\\s+", " "));
                            }
                        } catch (IOException e) {
                            statuses.computeIfAbsent("io-error", s -> new AtomicLong()).incrementAndGet();
                            errors.add("io-error " + e);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            return;
                        }
                    }
                });
            }
        }
        watcher.interrupt();
        double seconds = (System.nanoTime() - started) / 1e9;
        write(idsFile, new ArrayList<>(ids));
        write(errorsFile, new ArrayList<>(errors));
        long total = statuses.values().stream().mapToLong(AtomicLong::get).sum();
        System.out.printf("LOAD requests=%d ok=%d other=%d seconds=%.1f rate=%.0f/s statuses=%s%n",
                total, ids.size(), total - ids.size(), seconds, total / seconds, new TreeMap<>(statuses));
    }

    private static void write(Path file, List<String> lines) throws IOException {
        try (var out = new PrintWriter(Files.newBufferedWriter(file))) {
            lines.forEach(out::println);
        }
    }
}
