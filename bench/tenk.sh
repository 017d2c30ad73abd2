#!/usr/bin/env bash
# Ten thousand callers in flight at once at a slow worker (issue 32): wrk holds 10,000 connections for 20 s against a
# gateway with -Xmx256m, in front of the fake vLLM taking 3 s a call with 1,400 calls allowed in flight; once with plain
# answers, once with streamed ones ("stream": true). Prints, for each: the most connections established at the API
# port at once (from ss), answers and errors, p50/p99, the time /health and the management port's liveness took to
# answer, sampled every second during the run and after it, the most calls the fake held at once, the heap in use and
# the RSS, and where the machine's CPU went (gateway, fake, PostgreSQL, wrk and the rest; the gateway's by thread:
# virtual threads, Jetty's, the collector's, the JIT compilers'). A warm-up as large as the run (BENCH_WARMUP, 90 s)
# comes first, unmeasured. The gateway runs with bin/batch-gateway's JVM options, -Xmx and JAVA_OPTS added. Not part
# of CI; needs `ulimit -n` of about 25,000 (wrk and the gateway each hold 10,000 sockets).
#
#   bench/tenk.sh                          # about 6 minutes after the build
#   BENCH_NO_BUILD=1 BENCH_CLIENTS=3000 bench/tenk.sh
#   BENCH_CASES=stream bench/tenk.sh       # one case only
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

CLIENTS=${BENCH_CLIENTS:-10000}
DURATION=${BENCH_DURATION:-20s}
LATENCY_MS=${BENCH_WORKER_LATENCY_MS:-3000}
PER_TOKEN_US=${BENCH_PER_TOKEN_US:-10000}     # streamed answers: a token every 10 ms after the first, 16 tokens
BATCHES=${BENCH_CONCURRENT_BATCHES:-1400}
HEAP=${BENCH_HEAP:-256m}
WARMUP=${BENCH_WARMUP:-90s}
WARMUP_CLIENTS=${BENCH_WARMUP_CLIENTS:-$CLIENTS}
FAKE_PORT=${BENCH_FAKE_PORT:-9100}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8088}
MANAGEMENT_PORT=$((GATEWAY_PORT + 1))
start_run tenk

need wrk wrk
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((CLIENTS + 2 * BATCHES + 1024)) ] \
  || echo "warning: ulimit -n is $(ulimit -n): too few open files for $CLIENTS connections and $BATCHES worker calls" >&2
[ -n "${BENCH_NO_BUILD:-}" ] || build_bench
start_database "$OUT/database.log"

# the JDK's HttpServer closes idle connections beyond 200 (maxIdleConnections): the gateway keeps 1,400 alive
"$JAVA" -Dsun.net.httpserver.maxIdleConnections=4096 -Dsun.net.httpserver.nodelay=true \
  bench/FakeVllm.java "$FAKE_PORT" "$LATENCY_MS" "$PER_TOKEN_US" > "$OUT/fake-vllm.log" 2>&1 &
FAKE_PID=$!
PIDS+=("$FAKE_PID")
for _ in $(seq 1 60); do curl -fs "localhost:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
heap_used_kib() { # after a full collection: what the heap holds, not what waits to be collected
  "$(dirname "$JAVA")/jcmd" "$1" GC.run >/dev/null 2>&1 || true
  "$(dirname "$JAVA")/jcmd" "$1" GC.heap_info 2>/dev/null | sed -n 's/.*heap .*, used \([0-9]*\)K.*/\1/p' | head -1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU ticks so far: "gateway fake postgres machine-busy machine-all" (the machine's from /proc/stat, all cores)
cpu_now() {
  local pg=0 pid
  for pid in $(pgrep -x postgres); do pg=$((pg + $(ticks "$pid"))); done
  echo "$(ticks "$GATEWAY_PID") $(ticks "$FAKE_PID") $pg $(awk '/^cpu / {all = 0; for (i = 2; i <= NF; i++) all += $i; print all - $5 - $6, all}' /proc/stat) $(gateway_threads)"
}
# the gateway's CPU ticks by its threads' names: "virtual-thread-carriers jetty collector compiler", the rest is the
# gateway's total less these (the batch loop, the worker client's selector, the usage writer, the JVM's own)
gateway_threads() {
  local task
  for task in /proc/"$GATEWAY_PID"/task/*; do
    echo "$(tr ' ' _ < "$task/comm" 2>/dev/null) $(ticks "${task#/proc/}")"
  done | awk '/^ForkJoinPool/ {c += $2} /^jetty/ {j += $2} /^(GC_Thread|G1_)/ {g += $2} /^C[12]_Compiler/ {x += $2}
              END {print c + 0, j + 0, g + 0, x + 0}'
}
# one line a second: seconds, connections established, /health seconds and status, liveness seconds and status, RSS
# KiB, fake calls now; a probe that got no answer within 5 s has status 000
sample() {
  local started=$1
  while true; do
    local estab health live
    estab=$(ss -Htn state established "( sport = :$GATEWAY_PORT )" 2>/dev/null | wc -l)
    health=$(curl -s -o /dev/null -m 5 -w '%{time_total} %{http_code}' "localhost:$GATEWAY_PORT/health" || true)
    live=$(curl -s -o /dev/null -m 5 -w '%{time_total} %{http_code}' "localhost:$MANAGEMENT_PORT/actuator/health/liveness" || true)
    echo "$(( $(date +%s) - started )) $estab $health $live $(rss_kib "$GATEWAY_PID") $(curl -fs -m 2 "localhost:$FAKE_PORT/inflight" | cut -d' ' -f1)"
    sleep 1
  done
}

# waits until the last calls came back and the gateway closed its callers' connections (at most a minute)
drain() {
  for _ in $(seq 1 120); do
    [ "$(curl -fs -m 2 "localhost:$FAKE_PORT/inflight" | cut -d' ' -f1)" = 0 ] \
      && [ "$(ss -Htn "( sport = :$GATEWAY_PORT )" | grep -cv TIME-WAIT)" = 0 ] && break
    sleep 0.5
  done
  sleep 1
}

RESULTS="$OUT/results.md"
{
  echo "| case | callers | most connections established | answers | errors | p50 ms | p99 ms | at the gateway: p50 · p99 ms (queue · worker mean ms) | /health during: p50 · max ms (unanswered) | liveness during: p50 · max ms (unanswered) | /health · liveness after, ms | most calls at the worker | heap in use: idle → during (MiB) | heap per caller (KiB) | RSS most (MiB) | CPU s: gateway · fake · PostgreSQL · wrk and the rest · idle | the gateway's CPU s: virtual threads · Jetty's threads · collector · JIT compilers · the rest | load average (1 min) before → after |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---|---:|---:|---|---|---|"
} > "$RESULTS"

for case in ${BENCH_CASES:-plain stream}; do
  echo "== $CLIENTS callers, $case answers, fake vLLM ${LATENCY_MS} ms a call, $BATCHES calls in flight, -Xmx$HEAP" >&2
  env SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT="$MANAGEMENT_PORT" GATEWAY_AUTH=none \
    GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake \
    GATEWAY_WORKER_MAX_CONCURRENT_BATCHES="$BATCHES" GATEWAY_BATCH_SIZE=8 GATEWAY_BATCH_MAX_WAIT=20ms \
    GATEWAY_WORKER_TIMEOUT=60s LOGGING_LEVEL_ROOT=WARN GATEWAY_USAGE_JOURNAL_DIR="$OUT/journal-$case" \
    JDK_JAVA_OPTIONS="-Xmx$HEAP ${JAVA_OPTS:-}" bin/batch-gateway > "$OUT/gateway-$case.log" 2>&1 & # the shipped JVM options
  GATEWAY_PID=$!
  PIDS+=("$GATEWAY_PID")
  await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway-$case.log"
  stream=$([ "$case" = stream ] && echo 1 || echo 0)
  # warm-up, not measured, as large as the run and probed as the run is: at 256 callers the JIT was still compiling
  # the request path's methods in the run (C2 took a fifth of the gateway's CPU), and the probes' first requests made
  # it compile them again (their types pollute the request path's profiles: class-check deoptimizations)
  sample "$(date +%s)" > "$OUT/samples-warm-up-$case.txt" &
  SAMPLER=$!
  BENCH_STREAM=$stream wrk -t 2 -c "$WARMUP_CLIENTS" -d "$WARMUP" --timeout 30s -s bench/complete.lua \
    "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
  curl -fs -m 20 "localhost:$MANAGEMENT_PORT/actuator/prometheus" > /dev/null || true # the scrape's code paths too
  drain
  curl -fs -X DELETE "localhost:$FAKE_PORT/inflight" > /dev/null # the most calls at once: the run's, not the warm-up's
  idle_heap=$(heap_used_kib "$GATEWAY_PID")
  load0=$(cut -d' ' -f1 /proc/loadavg)

  curl -fs -m 20 "localhost:$MANAGEMENT_PORT/actuator/prometheus" > "$OUT/metrics-before-$case.txt" || true
  cpu0=$(cpu_now)
  sample "$(date +%s)" > "$OUT/samples-$case.txt" &
  SAMPLER=$!
  BENCH_STREAM=$stream wrk -t 2 -c "$CLIENTS" -d "$DURATION" --timeout 30s -s bench/complete.lua \
    "http://localhost:$GATEWAY_PORT" > "$OUT/wrk-$case.txt" 2>&1 &
  WRK=$!
  wait "$WRK" || true
  cpu1=$(cpu_now)
  kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
  curl -fs -m 20 "localhost:$MANAGEMENT_PORT/actuator/prometheus" > "$OUT/metrics-after-$case.txt" || true
  after=$( { curl -s -o /dev/null -m 5 -w '%{time_total}' "localhost:$GATEWAY_PORT/health" || echo -n –; echo -n " · ";
             curl -s -o /dev/null -m 5 -w '%{time_total}' "localhost:$MANAGEMENT_PORT/actuator/health/liveness" || echo -n –; } | tr -d '\n')
  most_calls=$(curl -fs "localhost:$FAKE_PORT/inflight" | cut -d' ' -f2)
  load1=$(cut -d' ' -f1 /proc/loadavg)
  # the heap while every caller waits, in a flood of its own after the run: measuring it takes a full collection,
  # which would stall the measured run (a 0.4 s pause in its latencies and probes)
  drain
  BENCH_STREAM=$stream wrk -t 2 -c "$CLIENTS" -d 15s --timeout 30s -s bench/complete.lua \
    "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 &
  WRK=$!
  sleep 10
  busy_heap=$(heap_used_kib "$GATEWAY_PID")
  busy_callers=$(ss -Htn state established "( sport = :$GATEWAY_PORT )" | wc -l)
  wait "$WRK" || true
  python3 - "$case" "$CLIENTS" "$OUT/wrk-$case.txt" "$OUT/samples-$case.txt" "$after" "$most_calls" \
    "${idle_heap:-0}" "${busy_heap:-0}" "$busy_callers" "$load0" "$load1" \
    "$OUT/metrics-before-$case.txt" "$OUT/metrics-after-$case.txt" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" >> "$RESULTS" <<'PY'
import json, re, statistics, sys
(case, clients, wrk_file, samples_file, after, most_calls, idle, busy, busy_callers, load0, load1, before_m, after_m,
 cpu0, cpu1, hz) = sys.argv[1:]

def cpu_split():
    """Where the machine's CPU went during the run, in CPU seconds: every process shares the same cores."""
    (g, f, p, busy, total, carriers, jetty, gc, jit) = (int(b) - int(a) for a, b in zip(cpu0.split(), cpu1.split()))
    sec = lambda t: t / int(hz)
    return (f"{sec(g):.1f} · {sec(f):.1f} · {sec(p):.1f} · {sec(busy - g - f - p):.1f} · {sec(total - busy):.1f} | "
            f"{sec(carriers):.1f} · {sec(jetty):.1f} · {sec(gc):.1f} · {sec(jit):.1f} · {sec(g - carriers - jetty - gc - jit):.1f}")

def scrape(path):
    values = {}
    try:
        for line in open(path):
            if not line.startswith("#") and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
    except OSError:
        pass
    return values

def at_gateway():
    """The gateway's own view of the run, from its metrics: what a request spent from the API filter to its answer's end."""
    b, a = scrape(before_m), scrape(after_m)
    grew = lambda name: a.get(name, 0) - b.get(name, 0)
    buckets = sorted((float(re.search(r'le="([^"]+)"', k).group(1)), grew(k)) for k in a
                     if k.startswith('gateway_request_duration_seconds_bucket{') and 'endpoint="/complete"' in k)
    if not buckets or buckets[-1][1] <= 0:
        return "–"
    at = lambda q: next(le for le, n in buckets if n >= q * buckets[-1][1]) * 1000
    mean = lambda base, labels="": grew(f"{base}_sum{labels}") / max(grew(f"{base}_count{labels}"), 1) * 1000
    worker = next((k[len("gateway_worker_latency_seconds_count"):] for k in a
                   if k.startswith("gateway_worker_latency_seconds_count") and 'outcome="ok"' in k), "")
    return (f"≤ {at(0.5):.0f} · ≤ {at(0.99):.0f} ({mean('gateway_queue_time_seconds'):.0f} · "
            f"{mean('gateway_worker_latency_seconds', worker):.0f})")

summary = next((l[len("WRK_SUMMARY "):] for l in open(wrk_file) if l.startswith("WRK_SUMMARY ")), None)
if summary is None:
    print(f"| {case} | wrk failed: {open(wrk_file).read()[-200:]!r} |")
    sys.exit()
s = json.loads(summary)
errors = s["non2xx"] + s["connect"] + s["read"] + s["write"] + s["timeout"]
rows = [line.split() for line in open(samples_file) if len(line.split()) >= 7]
def probe(i):
    answered = [float(r[i]) * 1000 for r in rows if r[i + 1] == "200"]
    missed = len(rows) - len(answered)
    if not answered:
        return f"none answered ({missed})"
    return f"{statistics.median(answered):.0f} · {max(answered):.0f} ({missed})"
most_estab = max((int(r[1]) for r in rows), default=0)
rss = max((int(r[6]) for r in rows), default=0) / 1024
ms = lambda t: f"{float(t) * 1000:.0f}" if re.fullmatch(r"[0-9.]+", t.strip()) else "no answer"
after_cells = " · ".join(ms(t) for t in after.split("·"))
idle_mib, busy_mib = int(idle) / 1024, int(busy) / 1024
per_caller = f"{(int(busy) - int(idle)) / max(int(busy_callers), 1):.1f}" if int(busy) else "–"
print(f"| {case} | {clients} | {most_estab} | {s['requests'] - s['non2xx']} | {errors} | {s['p50_us'] / 1000:.0f} | "
      f"{s['p99_us'] / 1000:.0f} | {at_gateway()} | {probe(2)} | {probe(4)} | {after_cells} | {most_calls} | {idle_mib:.0f} → {busy_mib:.0f} "
      f"({busy_callers} connections) | {per_caller} | {rss:.0f} | {cpu_split()} | {load0} → {load1} |")
PY
  tail -1 "$RESULTS" >&2
  grep -c OutOfMemoryError "$OUT/gateway-$case.log" > "$OUT/oom-$case.txt" || true
  kill "$GATEWAY_PID" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$GATEWAY_PID" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
done

{
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; wrk, the fake, PostgreSQL and the gateway on"
  echo "the same machine; the fake takes ${LATENCY_MS} ms a call (streamed: then a token every $((PER_TOKEN_US / 1000)) ms),"
  echo "$BATCHES calls in flight allowed, batch size 8, max-wait 20 ms, -Xmx$HEAP, $DURATION a case."
  echo "At the gateway: its own gateway.request.duration over the run (histogram bucket bounds; from the API filter to the"
  echo "answer's end, without the time a request waited to be accepted and read), and the mean time in queue and at the worker."
  echo "Heap per caller: the heap in use after a full collection 10 s into a second flood after the run, less the idle"
  echo "gateway's, over the connections established then. OutOfMemoryError lines:$(for c in ${BENCH_CASES:-plain stream}; do echo -n " $c $(cat "$OUT/oom-$c.txt")"; done)."
} >> "$RESULTS"
echo
cat "$RESULTS"
