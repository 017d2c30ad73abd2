#!/usr/bin/env bash
# The Batch API under load: a 50,000-line batch against the fake vLLM (50 ms a call, 32 concurrent batches of 8), its
# wall time from create to completed, the share of the workers' capacity B·C/L it used (lines per second over
# 8 × 32 / 0.05 s = 5,120), and the gateway's largest heap while it ran; then the same batch with interactive load
# beside it (bench/complete.lua, default tier, BENCH_CONNECTIONS connections) and that load's p99 against the same load
# without a batch. Prints a Markdown table and writes it to bench/results/<time>/batch.md. Not part of CI.
#
#   bench/batch.sh                                             # about 3 minutes (60 s of warm-up: BENCH_WARMUP)
#   BENCH_LINES=5000 BENCH_CONNECTIONS=32 bench/batch.sh      # a smaller run
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

LINES=${BENCH_LINES:-50000}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-20s}
LATENCY_MS=${BENCH_WORKER_LATENCY_MS:-50}
FAKE_PORT=${BENCH_FAKE_PORT:-9120}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8108}
MANAGEMENT_PORT=$((GATEWAY_PORT + 1))
ADMIN_TOKEN=bench-admin-token-0123456789abcdef-0123456789
USER_ID=4242
start_run batch
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
need jq jq
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

build_bench
start_database "$OUT/database.log"

echo "== starting the fake vLLM (${LATENCY_MS} ms a call)" >&2
"$JAVA" bench/FakeVllm.java "$FAKE_PORT" "$LATENCY_MS" > "$OUT/fake-vllm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs "localhost:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done

echo "== starting the gateway" >&2
SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT="$MANAGEMENT_PORT" GATEWAY_ADMIN_TOKEN="$ADMIN_TOKEN" \
  GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake \
  GATEWAY_WORKER_MAX_CONCURRENT_BATCHES=32 LOGGING_LEVEL_ROOT=WARN GATEWAY_USAGE_JOURNAL_DIR="$OUT/journal" \
  "$JAVA" -jar target/batch-gateway.jar > "$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway.log"
KEY=$(curl -fs "localhost:$GATEWAY_PORT/admin/keys" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H 'Content-Type: application/json' -d "{\"user_id\": $USER_ID, \"name\": \"bench\"}" | jq -r .key)
AUTH="Authorization: Bearer $KEY"

echo "== writing $LINES lines" >&2
python3 - "$LINES" > "$OUT/requests.jsonl" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"custom_id": f"line-{i}", "method": "POST", "url": "/v1/completions",
                      "body": {"model": "fake", "prompt": f"say hello to batch line {i}", "max_tokens": 16}}))
PY

heap_bytes() { curl -fs "localhost:$MANAGEMENT_PORT/actuator/metrics/jvm.memory.used?tag=area:heap" | jq '.measurements[0].value'; }

run_batch() { # name: uploads, creates, polls until the batch ends; prints seconds, status, lines completed, max heap
  local name=$1 file batch started status completed max_heap=0 heap
  file=$(curl -fs "localhost:$GATEWAY_PORT/v1/files" -H "$AUTH" -F purpose=batch -F "file=@$OUT/requests.jsonl" | jq -r .id)
  started=$(date +%s.%N)
  batch=$(curl -fs "localhost:$GATEWAY_PORT/v1/batches" -H "$AUTH" -H 'Content-Type: application/json' \
    -d "{\"input_file_id\": \"$file\", \"endpoint\": \"/v1/completions\", \"completion_window\": \"24h\"}" | jq -r .id)
  while :; do
    read -r status completed < <(curl -fs "localhost:$GATEWAY_PORT/v1/batches/$batch" -H "$AUTH" \
      | jq -r '[.status, .request_counts.completed] | @tsv')
    heap=$(heap_bytes); max_heap=$(python3 -c "print(max($max_heap, $heap))")
    case "$status" in completed|failed|expired|cancelled) break ;; esac
    sleep 1
  done
  echo "$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')") $status $completed $max_heap"
  curl -fs "localhost:$GATEWAY_PORT/v1/batches/$batch" -H "$AUTH" > "$OUT/batch-$name.json"
}

interactive() { # name, duration: default-tier load of another user; prints wrk's summary JSON
  BENCH_USER_ID=$((USER_ID + 1)) BENCH_AUTHORIZATION="Bearer $INTERACTIVE_KEY" \
    wrk -t 2 -c "$CONNECTIONS" -d "$2" --timeout 30s -s bench/complete.lua "http://localhost:$GATEWAY_PORT" \
    > "$OUT/wrk-$1.txt" 2>&1 || true
  sed -n 's/^WRK_SUMMARY //p' "$OUT/wrk-$1.txt"
}
INTERACTIVE_KEY=$(curl -fs "localhost:$GATEWAY_PORT/admin/keys" -H "Authorization: Bearer $ADMIN_TOKEN" \
  -H 'Content-Type: application/json' -d "{\"user_id\": $((USER_ID + 1)), \"name\": \"bench-interactive\"}" | jq -r .key)

TABLE="$OUT/batch.md"
{
  echo "| run | lines | wall s | lines/s | share of B·C/L | max heap MiB | interactive p99 ms (req/s) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
} > "$TABLE"
row() { # name, "seconds status completed heap", interactive summary or ""
  python3 - "$1" "$2" "$3" "$LINES" "$LATENCY_MS" >> "$TABLE" <<'PY'
import json, sys
name, result, summary, lines, latency_ms = sys.argv[1:]
secs, status, completed, heap = result.split()
capacity = 8 * 32 / (int(latency_ms) / 1000)
rate = int(completed) / float(secs)
inter = "–"
if summary:
    s = json.loads(summary)
    inter = f"{s['p99_us'] / 1000:.1f} ({s['requests'] / (s['duration_us'] / 1e6):.0f})"
print(f"| {name} ({status}) | {completed} | {float(secs):.1f} | {rate:.0f} | {rate / capacity:.0%} | {float(heap) / 2**20:.0f} | {inter} |")
PY
  tail -1 "$TABLE" >&2
}

echo "== warm-up: interactive load for ${BENCH_WARMUP:-60s}, not measured (the JIT compiles the request path)" >&2
interactive warm-up "${BENCH_WARMUP:-60s}" > /dev/null

echo "== interactive load alone ($DURATION)" >&2
alone=$(interactive alone "$DURATION")
row "interactive alone" "0.001 none 0 $(heap_bytes)" "$alone"

echo "== the batch alone" >&2
row "batch alone" "$(run_batch alone)" ""

echo "== the batch with interactive load beside it" >&2
BENCH_USER_ID=$((USER_ID + 1)) BENCH_AUTHORIZATION="Bearer $INTERACTIVE_KEY" \
  wrk -t 2 -c "$CONNECTIONS" -d 3600s --timeout 30s -s bench/complete.lua "http://localhost:$GATEWAY_PORT" \
  > "$OUT/wrk-beside.txt" 2>&1 &
WRK_PID=$!
PIDS+=("$WRK_PID")
result=$(run_batch beside)
kill -INT "$WRK_PID" 2>/dev/null || true # wrk reports what it measured so far, then ends
wait "$WRK_PID" 2>/dev/null || true
row "batch beside interactive" "$result" "$(sed -n 's/^WRK_SUMMARY //p' "$OUT/wrk-beside.txt")"

cat "$TABLE"
