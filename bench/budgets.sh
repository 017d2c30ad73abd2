#!/usr/bin/env bash
# Budgets' cost on the hot path: the same load (bench/complete.lua, users 1..1000, 1,024 connections, fake vLLM 50 ms,
# 32 concurrent batches) on a gateway with limits off, then on one where every user has limits (GATEWAY_DEFAULT_*)
# too large to bind, alternating, BENCH_ROUNDS times each. Prints a Markdown table and writes it to
# bench/results/<time>/budgets.md. Not part of CI. Same set-up as bench/run.sh (whose table this extends).
#
#   bench/budgets.sh                          # 2 rounds of 20 s per row after a 5 s warm-up per gateway
#   BENCH_DURATION=10s BENCH_ROUNDS=3 bench/budgets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${BENCH_DURATION:-20s}
ROUNDS=${BENCH_ROUNDS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-1024}
LATENCY_MS=${BENCH_WORKER_LATENCY_MS:-50}
FAKE_PORT=${BENCH_FAKE_PORT:-9110}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8098}
start_run
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

build_bench
start_database "$OUT/database.log"

echo "== starting the fake vLLM (${LATENCY_MS} ms a call)" >&2
"$JAVA" bench/FakeVllm.java "$FAKE_PORT" "$LATENCY_MS" > "$OUT/fake-vllm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs "localhost:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done

GATEWAY_PID=
start_gateway() { # name, then VAR=value … for the gateway's environment
  local name=$1; shift
  env "$@" SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none \
    GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake \
    LOGGING_LEVEL_ROOT=WARN GATEWAY_USAGE_JOURNAL_DIR="$OUT/journal" \
    "$JAVA" -jar target/batch-gateway.jar > "$OUT/gateway-$name.log" 2>&1 &
  GATEWAY_PID=$!
  PIDS+=("$GATEWAY_PID")
  await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway-$name.log"
  wrk -t 2 -c 64 -d "${BENCH_WARMUP:-5s}" -s bench/complete.lua "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true
}
stop_gateway() {
  kill "$GATEWAY_PID" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$GATEWAY_PID" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

TABLE="$OUT/budgets.md"
{
  echo "| scenario | round | conn. | req/s | p50 ms | p99 ms | errors (non-2xx) | CPU ms/req |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
} > "$TABLE"

run_row() { # name, round
  local name=$1 round=$2 ticks0 ticks1 summary
  ticks0=$(cpu_ticks "$GATEWAY_PID")
  wrk -t 2 -c "$CONNECTIONS" -d "$DURATION" --timeout 30s -s bench/complete.lua "http://localhost:$GATEWAY_PORT" \
    > "$OUT/wrk-$name-$round.txt" 2>&1 || true
  ticks1=$(cpu_ticks "$GATEWAY_PID")
  summary=$(sed -n 's/^WRK_SUMMARY //p' "$OUT/wrk-$name-$round.txt")
  [ -n "$summary" ] || { echo "wrk failed: $(cat "$OUT/wrk-$name-$round.txt")" >&2; exit 1; }
  python3 - "$name" "$round" "$CONNECTIONS" "$summary" "$ticks0" "$ticks1" "$(getconf CLK_TCK)" >> "$TABLE" <<'PY'
import json, sys
name, rnd, conns, summary, t0, t1, hz = sys.argv[1:]
s = json.loads(summary)
secs = s["duration_us"] / 1e6
ok = s["requests"] - s["non2xx"]
errors = s["non2xx"] + s["connect"] + s["read"] + s["write"] + s["timeout"]
cpu = f"{(int(t1) - int(t0)) * 1000 / int(hz) / ok:.3f}" if ok else "–"
print(f"| {name} | {rnd} | {conns} | {s['requests'] / secs:.0f} | {s['p50_us'] / 1000:.1f} | {s['p99_us'] / 1000:.1f} | {errors} ({s['non2xx']}) | {cpu} |")
PY
  tail -1 "$TABLE" >&2
}

HUGE=1000000000000
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round: limits off" >&2
  start_gateway "off-$round"
  run_row "limits off" "$round"
  stop_gateway
  echo "== round $round: limits on for every user, too large to bind" >&2
  start_gateway "on-$round" GATEWAY_DEFAULT_TOKENS_PER_DAY=$HUGE GATEWAY_DEFAULT_TOKENS_PER_MONTH=$HUGE \
    GATEWAY_DEFAULT_REQUESTS_PER_MINUTE=$HUGE
  run_row "limits on" "$round"
  stop_gateway
done

{
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores (load average before: $(cut -d' ' -f1-3 /proc/loadavg)), wrk on the same machine;"
  echo "fake vLLM ${LATENCY_MS} ms a call, 32 concurrent batches, batch size 8, ${DURATION} a row, users 1..1000."
} >> "$TABLE"
echo
cat "$TABLE"
