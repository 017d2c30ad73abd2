// Open-loop load at a fixed rate: POST /complete every 1/rate s whatever the answers do (no coordinated omission:
// each latency counts from the moment its request was due), then p50/p90/p99 of the 200s, on one line.
//   java bench/RateLoad.java http://localhost:8088 1000 20 5     # url, requests/s, seconds measured, seconds warm-up
//   java bench/RateLoad.java http://localhost:8088 4 20 0 2      # … every request as user 2 (users 1..1000 otherwise)
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

public class RateLoad {
    public static void main(String[] args) throws Exception {
        URI uri = URI.create(args[0] + "/complete");
        int rate = Integer.parseInt(args[1]);
        int seconds = Integer.parseInt(args[2]);
        int warmup = Integer.parseInt(args[3]);
        user = args.length > 4 ? Long.parseLong(args[4]) : 0;
        var http = HttpClient.newBuilder().executor(Executors.newVirtualThreadPerTaskExecutor()).build();
        run(http, uri, rate, warmup, false);
        run(http, uri, rate, seconds, true);
        System.exit(0);
    }

    /** The one user every request is billed to; 0: users 1..1000 in turn. */
    static long user;

    static void run(HttpClient http, URI uri, int rate, int seconds, boolean report) throws Exception {
        var latencies = new ConcurrentLinkedQueue<Long>();
        var errors = new AtomicInteger();
        long interval = 1_000_000_000L / rate;
        int total = rate * seconds;
        long start = System.nanoTime();
        try (var senders = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < total; i++) {
                long due = start + i * interval;
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    LockSupport.parkNanos(wait);
                }
                int n = i;
                senders.execute(() -> {
                    String body = "{\"prompt\":\"say hello to user " + n + "\",\"user_id\":" + (user > 0 ? user : n % 1000 + 1) + ",\"max_tokens\":16}";
                    var request = HttpRequest.newBuilder(uri).header("Content-Type", "application/json")
                            .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
                    try {
                        var response = http.send(request, HttpResponse.BodyHandlers.discarding());
                        if (response.statusCode() == 200) {
                            latencies.add(System.nanoTime() - due);
                        } else {
                            errors.incrementAndGet();
                        }
                    } catch (Exception e) {
                        errors.incrementAndGet();
                    }
                });
            }
        }
        if (!report) {
            return;
        }
        long elapsed = System.nanoTime() - start;
        long[] sorted = latencies.stream().mapToLong(Long::longValue).sorted().toArray();
        System.out.printf("RATE_LOAD requests=%d ok=%d errors=%d achieved_per_s=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f%n",
                total, sorted.length, errors.get(), sorted.length / (elapsed / 1e9),
                at(sorted, 0.50), at(sorted, 0.90), at(sorted, 0.99));
    }

    static double at(long[] sorted, double quantile) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        return sorted[Math.min(sorted.length - 1, (int) (quantile * sorted.length))] / 1e6;
    }
}
