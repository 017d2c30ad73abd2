#!/usr/bin/env bash
# Against a fake llama.cpp llama-server (bench/FakeLlamaServer.java: a fixed pool of HTTP threads, a fixed latency a
# call whatever its number of prompts), two rows at the same number of connections: wrk straight to the fake, one
# prompt per call, and wrk through the gateway's /complete (GATEWAY_WORKER_TYPE=llamacpp, lists of prompts in one
# call). Prints completions/s, p50/p99, the fake's calls and prompts a call, and the machine's load average; writes
# bench/results/llamacpp-<time>/results.md. A measurement, not a test (issue 26). Not part of CI.
#
#   bench/llamacpp.sh                        # 20 s a row after a warm-up (about 5 minutes with the build, loaded)
#   BENCH_DURATION=10s BENCH_CONNECTIONS=64 bench/llamacpp.sh
#   BENCH_CONCURRENT_BATCHES=8 bench/llamacpp.sh   # GATEWAY_WORKER_MAX_CONCURRENT_BATCHES (default: llamacpp's own, 4)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${BENCH_DURATION:-20s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
LATENCY_MS=${BENCH_WORKER_LATENCY_MS:-100}
HTTP_THREADS=${BENCH_HTTP_THREADS:-10}
FAKE_PORT=${BENCH_FAKE_PORT:-9120}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8120}
BATCH_SIZE=8
MAX_WAIT_MS=20
CONCURRENT=${BENCH_CONCURRENT_BATCHES:-4} # 4: llamacpp's default GATEWAY_WORKER_MAX_CONCURRENT_BATCHES
start_run llamacpp

need wrk wrk
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(load)

build_bench
start_database "$OUT/database.log"

echo "== starting the fake llama-server (${LATENCY_MS} ms a call, ${HTTP_THREADS} HTTP threads)" >&2
"$JAVA" bench/FakeLlamaServer.java "$FAKE_PORT" "$LATENCY_MS" "$HTTP_THREADS" > "$OUT/fake-llama-server.log" 2>&1 &
FAKE_PID=$!
PIDS+=("$FAKE_PID")
for _ in $(seq 1 60); do curl -fs "localhost:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done
# the fake must be ours: another bench's server on the port would be measured instead
kill -0 "$FAKE_PID" 2>/dev/null && curl -fs "localhost:$FAKE_PORT/props" | grep -q total_slots \
  || { echo "the fake llama-server did not start on port $FAKE_PORT; see $OUT/fake-llama-server.log" >&2; exit 1; }

TABLE="$OUT/results.md"
{
  echo "| path | conn. | completions/s | p50 ms | p99 ms | errors | fake's calls | prompts a call | most calls at once | load average before → after |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} > "$TABLE"

row() { # name, url, wrk script
  local name=$1 url=$2 script=$3 before after load0 summary
  before=$(curl -fs "localhost:$FAKE_PORT/stats")
  load0=$(load)
  wrk -t 2 -c "$CONNECTIONS" -d "$DURATION" --timeout 30s -s "bench/$script" "$url" > "$OUT/wrk-$script.txt" 2>&1 || true
  after=$(curl -fs "localhost:$FAKE_PORT/stats")
  summary=$(sed -n 's/^WRK_SUMMARY //p' "$OUT/wrk-$script.txt")
  [ -n "$summary" ] || { echo "wrk failed: $(cat "$OUT/wrk-$script.txt")" >&2; exit 1; }
  python3 - "$name" "$CONNECTIONS" "$summary" "$before" "$after" "$load0" "$(load)" >> "$TABLE" <<'PY'
import json, sys
name, conns, summary, before, after, load0, load1 = sys.argv[1:]
s = json.loads(summary)
calls0, prompts0, _ = map(int, before.split())
calls1, prompts1, peak = map(int, after.split())
calls, prompts = calls1 - calls0, prompts1 - prompts0
errors = s["non2xx"] + s["connect"] + s["read"] + s["write"] + s["timeout"]
rate = (s["requests"] - s["non2xx"]) / (s["duration_us"] / 1e6)
per_call = f"{prompts / calls:.2f}" if calls else "–"
print(f"| {name} | {conns} | {rate:.1f} | {s['p50_us'] / 1000:.1f} | {s['p99_us'] / 1000:.1f} | {errors} | {calls} "
      f"| {per_call} | {peak} | {load0.split()[0]} → {load1.split()[0]} |")
PY
  tail -1 "$TABLE" >&2
}

echo "== direct: one prompt per call to the fake" >&2
# warm-up, not measured: the fake's own JIT
wrk -t 2 -c "$CONNECTIONS" -d 3s -s bench/direct.lua "http://localhost:$FAKE_PORT" > /dev/null 2>&1 || true
row "direct to the fake, one prompt a call" "http://localhost:$FAKE_PORT" direct.lua

echo "== the gateway, GATEWAY_WORKER_TYPE=llamacpp" >&2
# as bench/run.sh starts it: no keys (wrk spreads requests over users 1..1000), batches of 8 or 20 ms, its own journal
env SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none \
  GATEWAY_BATCH_SIZE=$BATCH_SIZE GATEWAY_BATCH_MAX_WAIT=${MAX_WAIT_MS}ms \
  LOGGING_LEVEL_ROOT=WARN GATEWAY_USAGE_JOURNAL_DIR="$OUT/journal" \
  GATEWAY_WORKER_TYPE=llamacpp GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake \
  ${BENCH_CONCURRENT_BATCHES:+GATEWAY_WORKER_MAX_CONCURRENT_BATCHES=$CONCURRENT} \
  "$JAVA" -jar target/batch-gateway.jar > "$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway.log"
# warm-up, not measured: the JIT compiles the request path before the row counts
wrk -t 2 -c "$CONNECTIONS" -d "${BENCH_WARMUP:-5s}" -s bench/complete.lua "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true
worker_calls() { # the gateway's own count and total seconds of worker calls
  curl -fs "localhost:$((GATEWAY_PORT + 1))/actuator/prometheus" 2>/dev/null \
    | awk '/^gateway_worker_latency_seconds_count/ {c += $2} /^gateway_worker_latency_seconds_sum/ {s += $2} END {print c + 0, s + 0}'
}
CALLS_BEFORE=$(worker_calls)
row "through the gateway (llamacpp, C=$CONCURRENT)" "http://localhost:$GATEWAY_PORT" complete.lua
CALLS_AFTER=$(worker_calls)

{
  echo
  python3 - "$TABLE" "$CALLS_BEFORE" "$CALLS_AFTER" "$LATENCY_MS" "$HTTP_THREADS" "$BATCH_SIZE" "$CONCURRENT" <<'PY'
import sys
table, before, after = sys.argv[1:4]
latency, threads, batch, concurrent = (int(a) for a in sys.argv[4:])
rows = [l for l in open(table) if l.startswith("| direct") or l.startswith("| through")]
direct, gateway = (float(r.split("|")[3]) for r in rows)
calls0, secs0 = map(float, before.split())
calls1, secs1 = map(float, after.split())
mean = f"{(secs1 - secs0) * 1000 / (calls1 - calls0):.1f} ms" if calls1 > calls0 else "–"
print(f"The gateway serves {gateway / direct:.2f}× the completions a second of the fake called directly. Limits: direct, "
      f"{threads} threads / {latency} ms = {threads * 1000 / latency:.0f}/s ({direct * latency / threads / 10:.0f}% reached); "
      f"the gateway, {batch} prompts × {concurrent} calls / {latency} ms = {batch * concurrent * 1000 / latency:.0f}/s "
      f"({gateway * latency / batch / concurrent / 10:.0f}% reached; its worker calls took {mean} on average, by its own "
      f"gateway_worker_latency_seconds).")
PY
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load average (1, 5, 15 min) at the start"
  echo "$LOAD_START, at the end $(load): wrk, the fake, PostgreSQL and the gateway share the machine with whatever else runs."
  echo "Fake llama-server: ${LATENCY_MS} ms a call whatever its prompts, ${HTTP_THREADS} HTTP threads; gateway: batch size"
  echo "$BATCH_SIZE, max-wait ${MAX_WAIT_MS} ms; ${DURATION} a row, ${CONNECTIONS} connections."
} >> "$TABLE"
echo
cat "$TABLE"
