#!/usr/bin/env bash
# GET /usage/{user_id} for a month on a token_usage table of 100 million rows (issue 17): loads the rows through the
# table (the trigger keeps usage_daily), then times /usage with wrk at 1 and 8 connections, for a window with part days
# at both ends (rollups plus the edge days' rows) and one on midnights (rollups only). A measurement, not a test.
#
#   bench/usage-100m.sh                                   # 100,000,000 rows over 60 days, 100,000 users (~45 min, ~20 GB)
#   BENCH_ROWS=2000000 BENCH_USERS=10000 bench/usage-100m.sh   # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

ROWS=${BENCH_ROWS:-100000000}
USERS=${BENCH_USERS:-100000}
DAYS=${BENCH_DAYS:-60}
CHUNK=${BENCH_CHUNK:-5000000}
DURATION=${BENCH_DURATION:-20s}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8088}
OUT=bench/results/usage-100m-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
JAVA=$(java25)
PIDS=()
trap cleanup EXIT

need wrk wrk
need psql postgresql-client

# about 200 bytes a row with its two indexes and rollups, twice over for WAL and slack; the embedded database lives in /tmp
free_kb=$(df --output=avail -k "${TMPDIR:-/tmp}" | tail -1)
need_kb=$((ROWS / 1024 * 400))
if [ "$free_kb" -lt "$need_kb" ]; then
  echo "bench: $ROWS rows need about $((need_kb / 1048576)) GB free in ${TMPDIR:-/tmp}, there are $((free_kb / 1048576)) GB" >&2
  exit 1
fi

build_bench
start_database "$OUT/database.log"
PG_URI=$(echo "$SPRING_DATASOURCE_URL" | sed -E "s#^jdbc:postgresql://([^/?]+)/([^?]*).*#postgresql://$SPRING_DATASOURCE_USERNAME:$SPRING_DATASOURCE_PASSWORD@\1/\2#")
sql() { psql "$PG_URI" -v ON_ERROR_STOP=1 -Atq "$@"; }

echo "== starting the gateway (its migrations create the schema)" >&2
# GATEWAY_AUTH=none: wrk asks for any user's usage, as a trusted proxy would
env SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none GATEWAY_WORKER_TYPE=simulated \
  LOGGING_LEVEL_ROOT=WARN "$JAVA" -jar target/batch-gateway.jar > "$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway.log"

echo "== loading $ROWS rows over $DAYS days, $USERS users, in chunks of $CHUNK" >&2
sql -c "SELECT token_usage_create_partitions(now() - interval '$((DAYS + 31)) days', now() + interval '1 month')" > /dev/null
load_start=$(date +%s)
for ((first = 0; first < ROWS; first += CHUNK)); do
  last=$((first + CHUNK < ROWS ? first + CHUNK : ROWS))
  t0=$(date +%s.%N)
  # user g % USERS + 1 (each user's rows spread over the days), two models, 2 % of the rows not 'served'; the trigger
  # adds each statement's rows to usage_daily as the gateway's own writes do
  sql -c "INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at, outcome)
          SELECT gen_random_uuid(), g % $USERS + 1, p, c, p + c, CASE WHEN g % 3 = 0 THEN 'qwen-1.5b' ELSE 'llama-3.2-1b' END,
                 now() - random() * interval '$DAYS days', CASE WHEN g % 50 = 0 THEN 'client_gone' ELSE 'served' END
          FROM generate_series($first, $((last - 1))) g, LATERAL (SELECT 10 + g * 7 % 500 AS p, 1 + g * 13 % 256 AS c) counts"
  echo "   rows $first..$((last - 1)): $(python3 -c "print(f'{($last - $first) / ($(date +%s.%N) - $t0):,.0f}')") rows/s" >&2
done
load_secs=$(($(date +%s) - load_start))
sql -c "VACUUM ANALYZE token_usage" -c "VACUUM ANALYZE usage_daily"
read -r rows daily sizes < <(sql -F ' ' -c "SELECT (SELECT count(*) FROM token_usage), (SELECT count(*) FROM usage_daily),
  pg_size_pretty((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'token_usage'::regclass))
  || '+' || pg_size_pretty(pg_total_relation_size('usage_daily'))")

# a month ending now, with part days at both ends, and a month of whole days ending at today's midnight
FROM=$(date -u -d "30 days ago 13:37:00" +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FROM_MIDNIGHT=$(date -u -d "30 days ago" +%Y-%m-%dT00:00:00Z)
TO_MIDNIGHT=$(date -u +%Y-%m-%dT00:00:00Z)
curl -fs "localhost:$GATEWAY_PORT/usage/1?from=$FROM&to=$TO" > "$OUT/usage-1.json"

TABLE="$OUT/results.md"
{
  echo "| window | conn. | req/s | p50 ms | p90 ms | p99 ms | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
} > "$TABLE"
measure() { # name, connections, query
  local name=$1 connections=$2 query=$3
  USAGE_USERS=$USERS USAGE_QUERY="$query" wrk -t 1 -c "$connections" -d 5s -s bench/usage.lua "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true
  USAGE_USERS=$USERS USAGE_QUERY="$query" wrk -t 1 -c "$connections" -d "$DURATION" --timeout 10s -s bench/usage.lua \
    "http://localhost:$GATEWAY_PORT" > "$OUT/wrk-$connections-${name// /-}.txt" 2>&1 || true
  python3 - "$name" "$connections" "$(sed -n 's/^WRK_SUMMARY //p' "$OUT/wrk-$connections-${name// /-}.txt")" >> "$TABLE" <<'PY'
import json, sys
name, conns, summary = sys.argv[1:]
s = json.loads(summary)
errors = s["non2xx"] + s["connect"] + s["read"] + s["write"] + s["timeout"]
print(f"| {name} | {conns} | {s['requests'] / (s['duration_us'] / 1e6):.0f} | {s['p50_us'] / 1000:.1f} | "
      f"{s['p90_us'] / 1000:.1f} | {s['p99_us'] / 1000:.1f} | {errors} |")
PY
  tail -1 "$TABLE" >&2
}
for connections in 1 8; do
  measure "a month, part days at both ends" "$connections" "?from=$FROM&to=$TO"
  measure "a month of whole days" "$connections" "?from=$FROM_MIDNIGHT&to=$TO_MIDNIGHT"
  measure "a month, part days, by day" "$connections" "?from=$FROM&to=$TO&group_by=day"
done
{
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; PostgreSQL $(sql -c 'SHOW server_version') on the same machine,"
  echo "default settings; wrk on the same machine; $rows rows of $USERS users over $DAYS days (loaded in ${load_secs} s,"
  echo "$((rows / (load_secs > 0 ? load_secs : 1))) rows/s through the rollup trigger), $daily usage_daily rows; token_usage + usage_daily on disk: $sizes."
} >> "$TABLE"
# how PostgreSQL answers one user's month (the repository's rollup and edge-row reads), for the reader
sql -c "EXPLAIN (ANALYZE, BUFFERS) SELECT outcome, sum(requests), sum(prompt_tokens), sum(completion_tokens) FROM usage_daily
        WHERE user_id = 4242 AND day >= date '$(date -u -d '29 days ago' +%Y-%m-%d)' AND day < date '$(date -u +%Y-%m-%d)' GROUP BY outcome" > "$OUT/explain-rollups.txt"
sql -c "EXPLAIN (ANALYZE, BUFFERS) SELECT outcome, count(*), sum(prompt_tokens), sum(completion_tokens) FROM token_usage
        WHERE user_id = 4242 AND created_at >= '$FROM' AND created_at < date '$(date -u -d '29 days ago' +%Y-%m-%d)' GROUP BY outcome" > "$OUT/explain-edge.txt"
echo
cat "$TABLE"
