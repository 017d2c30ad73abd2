#!/usr/bin/env bash
# One-command benchmark: builds the jar, starts PostgreSQL (embedded unless SPRING_DATASOURCE_URL is set), a fake
# vLLM with a fixed latency per call, and the gateway; drives load with wrk from a separate process; prints a
# Markdown table and writes it to bench/results/<time>/results.md. Not part of CI.
#
#   bench/run.sh                 # all scenarios, 10 s each after a 60 s warm-up per gateway (about 13 minutes in all)
#   BENCH_DURATION=5s bench/run.sh
#   BENCH_ONLY="c16 10k" bench/run.sh   # some rows only: direct, simulated, c32 (with light load), c16, c8, 10k,
#                                        # fair (a light user beside a saturating one), flex (flex background load)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION=${BENCH_DURATION:-10s}
LATENCY_MS=${BENCH_WORKER_LATENCY_MS:-50}
FAKE_PORT=${BENCH_FAKE_PORT:-9100}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8088}
BATCH_SIZE=8
MAX_WAIT_MS=20
start_run

need wrk wrk
need psql postgresql-client
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

build_bench
start_database "$OUT/database.log"
# jdbc:postgresql://host:port/db?user=… -> postgresql://user:password@host:port/db
PG_URI=$(echo "$SPRING_DATASOURCE_URL" | sed -E "s#^jdbc:postgresql://([^/?]+)/([^?]*).*#postgresql://$SPRING_DATASOURCE_USERNAME:$SPRING_DATASOURCE_PASSWORD@\1/\2#")

echo "== starting the fake vLLM (${LATENCY_MS} ms a call)" >&2
"$JAVA" bench/FakeVllm.java "$FAKE_PORT" "$LATENCY_MS" > "$OUT/fake-vllm.log" 2>&1 &
FAKE_PID=$!
PIDS+=("$FAKE_PID")
for _ in $(seq 1 60); do curl -fs "localhost:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done

GATEWAY_PID=
start_gateway() { # name, then VAR=value … for the gateway's environment; JAVA_OPTS for the JVM
  local name=$1; shift
  # GATEWAY_AUTH=none: wrk spreads requests over users 1..1000 by user_id, as a trusted proxy would; a key lookup is a
  # cache hit on the hot path. The management port goes beside the gateway's, off the default 8081
  env "$@" SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none \
    GATEWAY_BATCH_SIZE=$BATCH_SIZE GATEWAY_BATCH_MAX_WAIT=${MAX_WAIT_MS}ms \
    LOGGING_LEVEL_ROOT=WARN GATEWAY_USAGE_JOURNAL_DIR="$OUT/journal" \
    "$JAVA" ${JAVA_OPTS:-} -jar target/batch-gateway.jar > "$OUT/gateway-$name.log" 2>&1 &
  GATEWAY_PID=$!
  PIDS+=("$GATEWAY_PID")
  await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway-$name.log"
  # warm-up, not measured: the JIT compiles the request path before the first row counts
  wrk -t 2 -c 64 -d "${BENCH_WARMUP:-60s}" -s bench/complete.lua "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true
}
stop_gateway() { # graceful first; a JVM that cannot stop (e.g. out of memory) is killed after 20 s
  kill "$GATEWAY_PID" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$GATEWAY_PID" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$GATEWAY_PID" 2>/dev/null || true
  wait "$GATEWAY_PID" 2>/dev/null || true
}
wanted() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat; } # busy, idle (all cores)
worker_calls() { # the gateway's own count and total seconds of worker calls (0 0 when it is not running)
  curl -fs "localhost:$((GATEWAY_PORT + 1))/actuator/prometheus" 2>/dev/null \
    | awk '/^gateway_worker_latency_seconds_count/ {c += $2} /^gateway_worker_latency_seconds_sum/ {s += $2} END {print c + 0, s + 0}'
}
postgres_ticks() { local t=0 pid; for pid in $(pgrep -x postgres); do t=$((t + $(cpu_ticks "$pid" 2>/dev/null || echo 0))); done; echo "$t"; }
rows() { psql "$PG_URI" -Atc "select count(*) from token_usage" 2>/dev/null || echo 0; }
fake_stats() { echo "$(curl -fs "localhost:$FAKE_PORT/stats")"; }
settled_rows() { # waits until the usage ledger has drained (row count stable for a second)
  local last=-1 now
  for _ in $(seq 1 60); do now=$(rows); [ "$now" = "$last" ] && { echo "$now"; return; }; last=$now; sleep 1; done
  echo "$now"
}

TABLE="$OUT/results.md"
{
  echo "| scenario | conn. | worker call ms (gateway's mean) | machine busy | gateway | fake vLLM | PostgreSQL | wrk, kernel, rest |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
} > "$OUT/cpu.md"
{
  echo "| scenario | conn. | req/s | p50 ms | p99 ms | errors | prompts/call | rows written | CPU ms/req | limit B·C/L | of limit |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$TABLE"

# scenario name, connections, url, script, pid to measure CPU of (or ""), concurrent batches C (or "" for no limit row)
run_wrk() {
  local name=$1 connections=$2 url=$3 script=$4 pid=$5 batches=$6
  local threads=2 calls0 prompts0 rows0 ticks0 ticks1 summary
  read -r calls0 prompts0 < <(fake_stats)
  rows0=$(rows)
  [ -n "$pid" ] && ticks0=$(cpu_ticks "$pid")
  local busy0 idle0 fake0 pg0 busy1 idle1 fake1 pg1 wcalls0 wsecs0 wcalls1 wsecs1
  read -r busy0 idle0 < <(machine_ticks); fake0=$(cpu_ticks "$FAKE_PID"); pg0=$(postgres_ticks)
  read -r wcalls0 wsecs0 < <(worker_calls)
  [ "$connections" -lt "$threads" ] && threads=$connections
  wrk -t "$threads" -c "$connections" -d "$DURATION" --timeout 30s -s "bench/$script" "$url" > "$OUT/wrk-$name-$connections.txt" 2>&1 || true
  [ -n "$pid" ] && ticks1=$(cpu_ticks "$pid")
  read -r busy1 idle1 < <(machine_ticks); fake1=$(cpu_ticks "$FAKE_PID"); pg1=$(postgres_ticks)
  read -r wcalls1 wsecs1 < <(worker_calls)
  # where the machine's CPU went during the row: is the gateway short of CPU, or the load generator beside it?
  python3 - "$name" "$connections" "$((busy1 - busy0))" "$((idle1 - idle0))" "$(( ${ticks1:-0} - ${ticks0:-0} ))" \
    "$((fake1 - fake0))" "$((pg1 - pg0))" "$wcalls0" "$wsecs0" "$wcalls1" "$wsecs1" >> "$OUT/cpu.md" <<'PY'
import sys
name, conns = sys.argv[1], sys.argv[2]
busy, idle, gateway, fake, pg = map(int, sys.argv[3:8])
calls0, secs0, calls1, secs1 = map(float, sys.argv[8:12])
total = busy + idle
share = lambda t: f"{t / total:.0%}" if total else "–"
call = f"{(secs1 - secs0) * 1000 / (calls1 - calls0):.1f}" if calls1 > calls0 else "–"
print(f"| {name} | {conns} | {call} | {share(busy)} | {share(gateway)} | {share(fake)} | {share(pg)} | {share(busy - gateway - fake - pg)} |")
PY
  summary=$(sed -n 's/^WRK_SUMMARY //p' "$OUT/wrk-$name-$connections.txt")
  [ -n "$summary" ] || { echo "wrk failed: $(cat "$OUT/wrk-$name-$connections.txt")" >&2; exit 1; }
  local calls1 prompts1 rows1
  read -r calls1 prompts1 < <(fake_stats)
  rows1=$(if [ "$script" = complete.lua ]; then settled_rows; else echo "$rows0"; fi)
  python3 - "$name" "$connections" "$summary" "$((calls1 - calls0))" "$((prompts1 - prompts0))" \
    "$((rows1 - rows0))" "${ticks0:-}" "${ticks1:-}" "$(getconf CLK_TCK)" "$batches" "$LATENCY_MS" "$BATCH_SIZE" "$MAX_WAIT_MS" >> "$TABLE" <<'PY'
import json, sys
name, conns, summary, calls, prompts, rows, t0, t1, hz, batches, latency, batch, max_wait = sys.argv[1:]
s = json.loads(summary)
secs = s["duration_us"] / 1e6
ok = s["requests"] - s["non2xx"]
rate = s["requests"] / secs
errors = s["non2xx"] + s["connect"] + s["read"] + s["write"] + s["timeout"]
per_call = f"{int(prompts) / int(calls):.2f}" if int(calls) else "–"
cpu = f"{(int(t1) - int(t0)) * 1000 / int(hz) / ok:.3f}" if t0 and ok else "–"
if batches:
    limit = int(batch) * int(batches) / (int(latency) / 1000)
    limit_cells = f"{limit:.0f} | {rate / limit:.1%}"
else:
    limit_cells = "– | –"
rows_cell = rows if name.startswith("gateway") else "–"
print(f"| {name} | {conns} | {rate:.0f} | {s['p50_us'] / 1000:.1f} | {s['p99_us'] / 1000:.1f} | {errors} | {per_call} | {rows_cell} | {cpu} | {limit_cells} |")
PY
  tail -1 "$TABLE" >&2
}

DIRECT_P50= DIRECT_P99=
if wanted direct; then
  echo "== direct: one prompt per request to the fake vLLM" >&2
  run_wrk "direct" 1 "http://localhost:$FAKE_PORT" direct.lua "" ""
  DIRECT_P50=$(tail -1 "$TABLE" | awk -F'|' '{gsub(/ /, "", $5); print $5}')
  DIRECT_P99=$(tail -1 "$TABLE" | awk -F'|' '{gsub(/ /, "", $6); print $6}')
  run_wrk "direct" 256 "http://localhost:$FAKE_PORT" direct.lua "" ""
fi

if wanted simulated; then
  echo "== gateway, simulated worker, 0 ms" >&2
  start_gateway simulated GATEWAY_WORKER_TYPE=simulated
  run_wrk "gateway, simulated 0 ms" 256 "http://localhost:$GATEWAY_PORT" complete.lua "$GATEWAY_PID" ""
  stop_gateway
fi

for concurrent in 32 16 8; do
  wanted "c$concurrent" || continue
  echo "== gateway, fake vLLM ${LATENCY_MS} ms, ${concurrent} concurrent batches" >&2
  start_gateway "vllm-c$concurrent" GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" \
    GATEWAY_WORKER_MODEL=fake GATEWAY_WORKER_MAX_CONCURRENT_BATCHES=$concurrent
  for connections in 64 256 1024; do
    run_wrk "gateway, vLLM ${LATENCY_MS} ms, C=$concurrent" "$connections" "http://localhost:$GATEWAY_PORT" complete.lua "$GATEWAY_PID" "$concurrent"
  done
  if [ "$concurrent" = 32 ]; then
    echo "== gateway, light load" >&2
    run_wrk "gateway, light load, C=$concurrent" 1 "http://localhost:$GATEWAY_PORT" complete.lua "$GATEWAY_PID" "$concurrent"
  fi
  stop_gateway
done

if wanted 10k; then
  echo "== gateway, 10,000 waiting clients, -Xmx256m" >&2
  JAVA_OPTS="-Xmx256m ${BENCH_10K_JAVA_OPTS:-}" start_gateway "vllm-10k" GATEWAY_WORKER_TYPE=vllm \
    GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake
  run_wrk "gateway, 10k clients, -Xmx256m" 10000 "http://localhost:$GATEWAY_PORT" complete.lua "$GATEWAY_PID" 32
  grep -c OutOfMemoryError "$OUT/gateway-vllm-10k.log" > "$OUT/oom-count.txt" || true
  stop_gateway
fi

LANES="$OUT/lanes.md"
SECONDS_A_ROW=${DURATION%s}
wrk_summary() { # requests/s, p50 ms, p99 ms, errors of a wrk run of complete.lua
  sed -n 's/^WRK_SUMMARY //p' "$1" | python3 -c "
import json, sys
s = json.load(sys.stdin)
print(round(s['requests'] / (s['duration_us'] / 1e6)), s['p50_us'] / 1000, s['p99_us'] / 1000, s['non2xx'] + s['timeout'])"
}
worker_busy() { # the share of C slots busy with worker calls: worker seconds before, after, C, over the row's seconds
  python3 -c "print(f'{($2 - $1) / ($SECONDS_A_ROW * $3):.0%}')" 2>/dev/null || echo "–"
}

if wanted fair; then
  # issue 29's case: one user keeps hundreds queued (400 connections, all user 1), another sends 4 requests/s (user 2);
  # the worker takes 2 batches at once. Fair share: the light user waits about one dispatch cycle, not the busy queue
  echo "== fair share: a light user at 4 req/s beside a saturating one, C=2" >&2
  start_gateway "vllm-fair" GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" \
    GATEWAY_WORKER_MODEL=fake GATEWAY_WORKER_MAX_CONCURRENT_BATCHES=2
  BENCH_USER_ID=1 wrk -t 2 -c 400 -d "$((SECONDS_A_ROW + 4))s" --timeout 30s -s bench/complete.lua \
    "http://localhost:$GATEWAY_PORT" > "$OUT/wrk-fair-busy.txt" 2>&1 &
  BUSY_PID=$!
  sleep 2 # the busy user's queue fills
  "$JAVA" bench/RateLoad.java "http://localhost:$GATEWAY_PORT" 4 "$SECONDS_A_ROW" 0 2 > "$OUT/rate-fair-light.txt" 2>&1 || true
  wait "$BUSY_PID" || true
  read -r busy_rate busy_p50 busy_p99 busy_errors < <(wrk_summary "$OUT/wrk-fair-busy.txt")
  light=$(sed -n 's/^RATE_LOAD //p' "$OUT/rate-fair-light.txt")
  light_p50=$(echo "$light" | sed -n 's/.*p50_ms=\([^ ]*\).*/\1/p'); light_p99=$(echo "$light" | sed -n 's/.*p99_ms=\([^ ]*\).*/\1/p')
  light_errors=$(echo "$light" | sed -n 's/.*errors=\([^ ]*\).*/\1/p')
  echo "| fair share, C=2: light user (4 req/s) beside a saturating one (400 conn.) | light p50 ${light_p50} ms, p99 ${light_p99} ms, ${light_errors} errors | busy user: ${busy_rate} req/s, p50 ${busy_p50} ms, p99 ${busy_p99} ms |" >> "$LANES"
  tail -1 "$LANES" >&2
  stop_gateway
fi

if wanted flex; then
  # default traffic (64 connections) alone, then beside flex background load (256 connections in the flex tier):
  # default's p99 should not move (within 10 %) while flex keeps the worker busy
  echo "== flex background load beside default traffic, C=4" >&2
  start_gateway "vllm-flex" GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" \
    GATEWAY_WORKER_MODEL=fake GATEWAY_WORKER_MAX_CONCURRENT_BATCHES=4
  read -r c0 s0 < <(worker_calls)
  wrk -t 2 -c 64 -d "$DURATION" --timeout 30s -s bench/complete.lua "http://localhost:$GATEWAY_PORT" > "$OUT/wrk-flex-alone.txt" 2>&1 || true
  read -r c1 s1 < <(worker_calls)
  read -r alone_rate alone_p50 alone_p99 alone_errors < <(wrk_summary "$OUT/wrk-flex-alone.txt")
  BENCH_SERVICE_TIER=flex wrk -t 1 -c 256 -d "$((SECONDS_A_ROW + 4))s" --timeout 60s -s bench/complete.lua \
    "http://localhost:$GATEWAY_PORT" > "$OUT/wrk-flex-background.txt" 2>&1 &
  FLEX_PID=$!
  sleep 2
  read -r c2 s2 < <(worker_calls)
  wrk -t 1 -c 64 -d "$DURATION" --timeout 30s -s bench/complete.lua "http://localhost:$GATEWAY_PORT" > "$OUT/wrk-flex-beside.txt" 2>&1 || true
  read -r c3 s3 < <(worker_calls)
  wait "$FLEX_PID" || true
  read -r beside_rate beside_p50 beside_p99 beside_errors < <(wrk_summary "$OUT/wrk-flex-beside.txt")
  read -r flex_rate flex_p50 flex_p99 flex_errors < <(wrk_summary "$OUT/wrk-flex-background.txt")
  echo "| default alone (64 conn.), C=4 | ${alone_rate} req/s, p50 ${alone_p50} ms, p99 ${alone_p99} ms, ${alone_errors} errors | worker busy $(worker_busy "$s0" "$s1" 4) |" >> "$LANES"
  echo "| default (64 conn.) beside flex (256 conn.), C=4 | ${beside_rate} req/s, p50 ${beside_p50} ms, p99 ${beside_p99} ms, ${beside_errors} errors | worker busy $(worker_busy "$s2" "$s3" 4); flex ${flex_rate} req/s, p50 ${flex_p50} ms, ${flex_errors} errors |" >> "$LANES"
  tail -2 "$LANES" >&2
  stop_gateway
fi

{
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m); wrk on the same machine;"
  echo "worker latency L = ${LATENCY_MS} ms, batch size B = $BATCH_SIZE, max-wait ${MAX_WAIT_MS} ms, ${DURATION} a row."
  LIGHT=$(grep '^| gateway, light load' "$TABLE" | head -1 || true)
  [ -z "$LIGHT" ] || [ -z "$DIRECT_P50" ] || python3 - "$LIGHT" "$DIRECT_P50" "$DIRECT_P99" "$MAX_WAIT_MS" <<'PY'
import sys
row, direct_p50, direct_p99, max_wait = sys.argv[1:]
cells = [c.strip() for c in row.split('|')]
p50, p99 = float(cells[4]), float(cells[5])
print(f"Light load (1 connection): the gateway's overhead beyond max-wait ({max_wait} ms) + the worker's own latency "
      f"(direct, 1 connection: p50 {direct_p50} ms, p99 {direct_p99} ms) is p50 {p50 - float(max_wait) - float(direct_p50):.1f} ms, "
      f"p99 {p99 - float(max_wait) - float(direct_p99):.1f} ms.")
PY
  [ ! -f "$OUT/oom-count.txt" ] || echo "OutOfMemoryError lines in the 10k run's log: $(cat "$OUT/oom-count.txt")."
} >> "$TABLE"
[ ! -f "$LANES" ] || { echo; echo "Lanes (issue 29): fair share between users, flex beside default:"; echo; echo "| scenario | measured | beside |"; echo "|---|---|---|"; cat "$LANES"; } >> "$TABLE"
{ echo; echo "Where the time and the CPU went (CPU as a share of all $(nproc) cores during each row):"; echo; cat "$OUT/cpu.md"; } >> "$TABLE"
echo
cat "$TABLE"
