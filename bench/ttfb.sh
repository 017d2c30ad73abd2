#!/usr/bin/env bash
# Time to first byte of a streamed completion at one connection: straight to the fake vLLM, and through the gateway
# (which waits up to GATEWAY_BATCH_MAX_WAIT for company, then streams the batch's call). Not part of CI.
#
#   bench/ttfb.sh                 # 100 requests each way after 1,500 warm-up ones, in 5 alternating rounds (about 2
#                                 # minutes); prints p50 and p90 in ms, and the gateway's own share beyond max-wait
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

REQUESTS=${BENCH_REQUESTS:-100}
TTFT_MS=${BENCH_TTFT_MS:-50}          # the fake's time to first token
PER_TOKEN_US=${BENCH_PER_TOKEN_US:-1000}
FAKE_PORT=${BENCH_FAKE_PORT:-9100}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8088}
MAX_WAIT_MS=${BENCH_MAX_WAIT_MS:-20}
start_run ttfb

build_bench
start_database "$OUT/database.log"
# TCP_NODELAY, as uvicorn sets it: without it each streamed chunk after the headers waits for their ACK
"$JAVA" -Dsun.net.httpserver.nodelay=true bench/FakeVllm.java "$FAKE_PORT" "$TTFT_MS" "$PER_TOKEN_US" > "$OUT/fake-vllm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs "localhost:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done
env SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none \
  GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake \
  GATEWAY_BATCH_MAX_WAIT=${MAX_WAIT_MS}ms LOGGING_LEVEL_ROOT=WARN \
  "$JAVA" -jar target/batch-gateway.jar > "$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway.log"

# the first byte's time, in ms, of each of n streamed requests, one after another on one kept-alive connection (as a
# client library keeps it), in batches of 100 per curl
measure() { # n url body
  local left=$1
  while [ "$left" -gt 0 ]; do
    local n=$((left < 100 ? left : 100))
    local urls=()
    for _ in $(seq 1 "$n"); do urls+=(-o /dev/null "$2"); done
    curl -s -w '%{time_starttransfer}\n' -H 'Content-Type: application/json' -d "$3" "${urls[@]}"
    left=$((left - n))
  done | awk '{printf "%.2f\n", $1 * 1000}' | sort -n
}
percentile() { awk -v p="$1" '{v[NR]=$1} END {i=int(NR*p/100+0.5); if (i<1) i=1; print v[i]}'; }

DIRECT_BODY='{"model":"fake","prompt":"the quick brown fox","max_tokens":16,"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}'
GATEWAY_BODY='{"prompt":"the quick brown fox","user_id":1,"max_tokens":16,"stream":true}'
# warm-up, not measured: the JIT compiles the streaming path first
measure "${BENCH_WARMUP_REQUESTS:-1500}" "http://localhost:$GATEWAY_PORT/complete" "$GATEWAY_BODY" > /dev/null
measure 20 "http://localhost:$FAKE_PORT/v1/completions" "$DIRECT_BODY" > /dev/null
# the two in alternating rounds, so that a change in the machine's load between them touches both alike
ROUNDS=${BENCH_ROUNDS:-5}
for _ in $(seq 1 "$ROUNDS"); do
  measure $((REQUESTS / ROUNDS)) "http://localhost:$FAKE_PORT/v1/completions" "$DIRECT_BODY" >> "$OUT/direct.txt"
  measure $((REQUESTS / ROUNDS)) "http://localhost:$GATEWAY_PORT/complete" "$GATEWAY_BODY" >> "$OUT/gateway.txt"
done
sort -n -o "$OUT/direct.txt" "$OUT/direct.txt"
sort -n -o "$OUT/gateway.txt" "$OUT/gateway.txt"

{
  echo "| time to first byte, 1 connection, fake TTFT ${TTFT_MS} ms, max-wait ${MAX_WAIT_MS} ms | p50 ms | p90 ms |"
  echo "|---|---:|---:|"
  echo "| direct to the fake | $(percentile 50 < "$OUT/direct.txt") | $(percentile 90 < "$OUT/direct.txt") |"
  echo "| through the gateway | $(percentile 50 < "$OUT/gateway.txt") | $(percentile 90 < "$OUT/gateway.txt") |"
  echo
  echo "the gateway's own share at p50, beyond max-wait: $(awk -v g="$(percentile 50 < "$OUT/gateway.txt")" \
    -v d="$(percentile 50 < "$OUT/direct.txt")" -v w="$MAX_WAIT_MS" 'BEGIN {printf "%.2f", g - d - w}') ms"
} | tee "$OUT/results.md"
