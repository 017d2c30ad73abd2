#!/usr/bin/env bash
# What this machine allows before the gateway does anything (issue 32): the same loads as bench/tenk.sh and
# bench/light-cpu.sh, served by a server that does nothing but wait. Not part of CI.
#
# 1. Ten thousand callers at the fake vLLM itself, each call one prompt answered after the fake's 3 s + 16 tokens of
#    10 ms (what the gateway's worker takes in bench/tenk.sh), with no gateway: p50/p99 as wrk sees them, and the time
#    the fake's own GET /health took, probed once a second (a virtual thread per exchange, like the gateway's callers).
# 2. One client sending a trivial GET /health every 75 ms (the pace of bench/light-cpu.sh's one-client row), to the
#    fake and to an idle gateway, and the same back to back: CPU per request, from /proc, less each process's idle CPU.
#
#   bench/floor.sh                   # about 3 minutes after the build
#   BENCH_NO_BUILD=1 bench/floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

CLIENTS=${BENCH_CLIENTS:-10000}
DURATION=${BENCH_DURATION:-20s}
FAKE_PORT=${BENCH_FAKE_PORT:-9100}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8088}
start_run floor

need wrk wrk
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ -n "${BENCH_NO_BUILD:-}" ] || build_bench

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

"$JAVA" -Dsun.net.httpserver.maxIdleConnections=16384 -Dsun.net.httpserver.nodelay=true \
  bench/FakeVllm.java "$FAKE_PORT" 3000 10000 > "$OUT/fake-vllm.log" 2>&1 &
FAKE_PID=$!
PIDS+=("$FAKE_PID")
for _ in $(seq 1 60); do curl -fs "localhost:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done

cat > "$OUT/one-prompt.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"fake","prompt":["say hello"],"max_tokens":16}'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_SUMMARY %d %d %d %d\n', summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
LUA
cat > "$OUT/paced.lua" <<'LUA'
request = function() return wrk.format("GET", "/health") end
response = function() os.execute("sleep 0.075") end
LUA

echo "== $CLIENTS callers at the fake alone" >&2
wrk -t 2 -c "$CLIENTS" -d 30s --timeout 30s -s "$OUT/one-prompt.lua" "http://localhost:$FAKE_PORT/v1/completions" \
  > /dev/null 2>&1 || true # warm-up
sleep 5
( while true; do curl -s -o /dev/null -m 5 -w '%{time_total}\n' "localhost:$FAKE_PORT/health" || echo 5; sleep 1; done ) \
  > "$OUT/fake-health.txt" &
PROBE=$!
wrk -t 2 -c "$CLIENTS" -d "$DURATION" --timeout 30s -s "$OUT/one-prompt.lua" "http://localhost:$FAKE_PORT/v1/completions" \
  > "$OUT/wrk-fake.txt" 2>&1 || true
kill "$PROBE"; wait "$PROBE" 2>/dev/null || true
read -r TENK_N TENK_ERRORS TENK_P50 TENK_P99 < <(sed -n 's/^WRK_SUMMARY //p' "$OUT/wrk-fake.txt")
read -r HEALTH_P50 HEALTH_MAX < <(sort -n "$OUT/fake-health.txt" | awk '{v[NR] = $1 * 1000} END {printf "%.0f %.0f\n", v[int((NR + 1) / 2)], v[NR]}')

echo "== one client, GET /health" >&2
start_database "$OUT/database.log"
env SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none \
  GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake \
  LOGGING_LEVEL_ROOT=WARN GATEWAY_USAGE_JOURNAL_DIR="$OUT/journal" bin/batch-gateway > "$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway.log"
wrk -t 1 -c 1 -d 30s "http://localhost:$GATEWAY_PORT/health" > /dev/null 2>&1 || true # warm-up
wrk -t 1 -c 1 -d 30s "http://localhost:$FAKE_PORT/health" > /dev/null 2>&1 || true

# "pid port script": CPU ms per request of 20 s of one client, less what the process spends idle in as long
per_request() {
  local pid=$1 port=$2 script=$3 t0 t1 i0 i1 n
  i0=$(ticks "$pid"); sleep 20; i1=$(ticks "$pid")
  t0=$(ticks "$pid")
  n=$(wrk -t 1 -c 1 -d 20s ${script:+-s "$script"} "http://localhost:$port/health" | awk '/requests in/ {print $1}')
  t1=$(ticks "$pid")
  python3 -c "print(f'{(($t1 - $t0) - ($i1 - $i0)) * 1000 / $HZ / $n:.3f} ({$n} requests)')"
}
FAKE_PACED=$(per_request "$FAKE_PID" "$FAKE_PORT" "$OUT/paced.lua")
GATEWAY_PACED=$(per_request "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/paced.lua")
FAKE_B2B=$(per_request "$FAKE_PID" "$FAKE_PORT" "")
GATEWAY_B2B=$(per_request "$GATEWAY_PID" "$GATEWAY_PORT" "")

{
  echo "$(date -u +%Y-%m-%d), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| $CLIENTS callers at the fake alone ($DURATION) | answers | errors | p50 ms | p99 ms | the fake's /health during: p50 · max ms |"
  echo "|---|---:|---:|---:|---:|---|"
  echo "| a call answered after 3.16 s | $TENK_N | $TENK_ERRORS | $((TENK_P50 / 1000)) | $((TENK_P99 / 1000)) | $HEALTH_P50 · $HEALTH_MAX |"
  echo
  echo "| one client, GET /health | the fake (JDK HttpServer): CPU ms a request | the gateway: CPU ms a request |"
  echo "|---|---|---|"
  echo "| every 75 ms | $FAKE_PACED | $GATEWAY_PACED |"
  echo "| back to back | $FAKE_B2B | $GATEWAY_B2B |"
} | tee "$OUT/results.md"
