#!/usr/bin/env bash
# The latency the durable usage ledger adds (an answer waits for its row's commit): the gateway with the simulated
# worker (50 ms a batch, batches of 8, max-wait 20 ms) under an open-loop load of 1,000 completions/s, this checkout
# against a base commit (default: where this branch left main), alternately, ROUNDS times each. Not part of CI.
#
#   bench/durability.sh                     # about 4 minutes after the builds
#   BENCH_BASE=592864f BENCH_ROUNDS=3 BENCH_RATE=1000 BENCH_SECONDS=20 bench/durability.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

BASE=${BENCH_BASE:-$(git merge-base HEAD main)}
ROUNDS=${BENCH_ROUNDS:-2}
RATE=${BENCH_RATE:-1000}
SECONDS_MEASURED=${BENCH_SECONDS:-20}
PORT=${BENCH_GATEWAY_PORT:-8098}
start_run durability

build_bench
BASE_DIR=target/bench-base
if [ ! -f "$BASE_DIR/target/batch-gateway.jar" ] || [ "$(cat "$BASE_DIR/COMMIT" 2>/dev/null)" != "$BASE" ]; then
  echo "== building the base $BASE" >&2
  rm -rf "$BASE_DIR" && mkdir -p "$BASE_DIR"
  git archive "$BASE" | tar -x -C "$BASE_DIR"
  (cd "$BASE_DIR" && ./mvnw -B -q -DskipTests package) && echo "$BASE" > "$BASE_DIR/COMMIT"
fi
start_database "$OUT/database.log"

measure() { # name, jar
  local name=$1 jar=$2
  env SERVER_PORT="$PORT" MANAGEMENT_SERVER_PORT=$((PORT + 1)) GATEWAY_AUTH=none GATEWAY_WORKER_TYPE=simulated GATEWAY_SIMULATED_LATENCY=50ms \
    GATEWAY_USAGE_JOURNAL_DIR="$OUT/journal" LOGGING_LEVEL_ROOT=WARN \
    "$JAVA" -jar "$jar" > "$OUT/gateway-$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  await_gateway "$pid" "$PORT" "$OUT/gateway-$name.log"
  local line
  line=$("$JAVA" bench/RateLoad.java "http://localhost:$PORT" "$RATE" "$SECONDS_MEASURED" 5 | grep RATE_LOAD)
  local commit
  commit=$(curl -fs "localhost:$((PORT + 1))/actuator/prometheus" \
    | awk '/^gateway_usage_write_latency_seconds_(sum|count) / {v[$1]=$2} END {if (v["gateway_usage_write_latency_seconds_count"] > 0) printf "%.2f", 1000 * v["gateway_usage_write_latency_seconds_sum"] / v["gateway_usage_write_latency_seconds_count"]; else printf "-"}')
  echo "$name $line mean_commit_ms=$commit" | tee -a "$OUT/results.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for round in $(seq 1 "$ROUNDS"); do
  measure "base-$round" "$BASE_DIR/target/batch-gateway.jar"
  measure "durable-$round" target/batch-gateway.jar
done
echo "results in $OUT/results.txt" >&2
