#!/usr/bin/env bash
# The gateway's CPU per request when little happens (issue 32): idle, one client sending requests one after another,
# and 1,024 connections, against the 50 ms fake vLLM. CPU is the gateway process's own CPU time (utime + stime from
# /proc), never wall time, so the numbers hold on a machine shared with other work; the load average is printed beside
# them. Also prints which of the gateway's threads spent the CPU of each row. Not part of CI.
#
#   bench/light-cpu.sh                       # about 4 minutes after the build (60 s of warm-up: BENCH_WARMUP; then
#                                            # 30 s of each row's load before it: BENCH_SETTLE)
#   BENCH_NO_BUILD=1 bench/light-cpu.sh      # the jar as built last
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

LATENCY_MS=${BENCH_WORKER_LATENCY_MS:-50}
FAKE_PORT=${BENCH_FAKE_PORT:-9100}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8088}
LIGHT_SECONDS=${BENCH_LIGHT_SECONDS:-20}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-10}
start_run light-cpu

need wrk wrk
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ -n "${BENCH_NO_BUILD:-}" ] || build_bench
start_database "$OUT/database.log"

"$JAVA" bench/FakeVllm.java "$FAKE_PORT" "$LATENCY_MS" > "$OUT/fake-vllm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs "localhost:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done

env SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none \
  GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://localhost:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake \
  GATEWAY_WORKER_MAX_CONCURRENT_BATCHES=32 GATEWAY_BATCH_SIZE=8 GATEWAY_BATCH_MAX_WAIT=20ms \
  LOGGING_LEVEL_ROOT=WARN GATEWAY_USAGE_JOURNAL_DIR="$OUT/journal" \
  "$JAVA" ${JAVA_OPTS:-} -jar target/batch-gateway.jar > "$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway.log"

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { cut -d' ' -f1 /proc/loadavg; }
# the gateway's threads' context switches so far (those of threads that ended are not counted): each is a thread
# parked and woken, which costs CPU of its own (6-10 µs for a platform thread, 30-36 µs for a virtual one, here:
# bench/WakeCost.java)
switches() { cat /proc/"$GATEWAY_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}'; }
threads() { # each thread's CPU ticks (utime + stime), id and name: "ticks<TAB>tid<TAB>name"
  for stat in /proc/"$GATEWAY_PID"/task/*/stat; do
    sed -E 's/^([0-9]+) \((.*)\) [A-Z] (.*)$/\1\t\2\t\3/' "$stat" 2>/dev/null \
      | awk -F'\t' '{split($3, f, " "); print f[11] + f[12] "\t" $1 "\t" $2}'
  done
}
# one wrk run: connections, seconds; prints "requests cpu_ms_per_request p50_ms load_before load_after switches_per_request"
measure() {
  local connections=$1 seconds=$2 t0 t1 l0 s0 s1 summary
  l0=$(load); t0=$(cpu_ticks "$GATEWAY_PID"); s0=$(switches)
  wrk -t 1 -c "$connections" -d "${seconds}s" --timeout 30s -s bench/complete.lua "http://localhost:$GATEWAY_PORT" \
    > "$OUT/wrk-$connections.txt" 2>&1 || true
  t1=$(cpu_ticks "$GATEWAY_PID"); s1=$(switches)
  summary=$(sed -n 's/^WRK_SUMMARY //p' "$OUT/wrk-$connections.txt")
  python3 - "$summary" "$((t1 - t0))" "$HZ" "$l0" "$(load)" "$((s1 - s0))" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); ticks, hz, switched = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[6])
ok = s["requests"] - s["non2xx"]
print(ok, f"{ticks * 1000 / hz / ok:.3f}" if ok else "–", f"{s['p50_us'] / 1000:.1f}", sys.argv[4], sys.argv[5],
      f"{switched / ok:.1f}" if ok else "–")
PY
}

# warm-up, not measured: the JIT compiles the request path (after 10 s of it the JIT's compiler threads were still the
# largest share of the one-client row: 6.6 of 16.9 ms a request; after 60 s, 1.4 of 5.6)
wrk -t 2 -c 64 -d "${BENCH_WARMUP:-60s}" -s bench/complete.lua "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true
sleep 2

l0=$(load); t0=$(cpu_ticks "$GATEWAY_PID"); s0=$(switches); sleep "$IDLE_SECONDS"; t1=$(cpu_ticks "$GATEWAY_PID")
IDLE=$(python3 -c "print(f'{($t1 - $t0) / $HZ / $IDLE_SECONDS:.1%}')")
IDLE_SWITCHES=$(( ($(switches) - s0) / IDLE_SECONDS )); IDLE_L1=$(load)

# one client, not measured: going from 64 connections to one, the JIT recompiles much of the request path (its
# compiler threads took 4.8 of 8.9 ms a request in a row measured at once); a lightly loaded gateway is past that
wrk -t 1 -c 1 -d "${BENCH_SETTLE:-30s}" -s bench/complete.lua "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true

threads | sort -t$'\t' -k2 -n > "$OUT/threads-before.tsv"
read -r LIGHT_N LIGHT_CPU LIGHT_P50 LIGHT_L0 LIGHT_L1 LIGHT_SW < <(measure 1 "$LIGHT_SECONDS")
threads | sort -t$'\t' -k2 -n > "$OUT/threads-after.tsv"
# 1,024 connections, not measured: going from one client to many, the JIT recompiles again (C2 took 32 % of the
# gateway's samples in a row measured at once, 2026-12-06)
wrk -t 1 -c 1024 -d "${BENCH_SETTLE:-30s}" -s bench/complete.lua "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true
sleep 2
threads | sort -t$'\t' -k2 -n > "$OUT/threads-before-many.tsv"
read -r MANY_N MANY_CPU MANY_P50 MANY_L0 MANY_L1 MANY_SW < <(measure 1024 10)
threads | sort -t$'\t' -k2 -n > "$OUT/threads-after-many.tsv"

# the CPU of the gateway's threads between two snapshots ($1, $2), by name, per request of $3 requests
by_thread() {
  python3 - "$1" "$2" "$HZ" "$3" <<'PY'
import re, sys
from collections import Counter
def read(path): # thread id -> (ticks, name)
    threads = {}
    for line in open(path):
        t, tid, name = line.rstrip("\n").split("\t", 2)
        threads[tid] = (int(t), name)
    return threads
before, after, hz, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# each thread alive at the end, from its ticks at the start (0 if it started since); names without numbers, so that
# pools sum: "batch-3" -> "batch-#". A thread that ended during the row is missing here, not from the row's total
spent = Counter()
for tid, (t, name) in after.items():
    spent[re.sub(r"\d+", "#", name)] += t - before.get(tid, (0, name))[0]
for name, t in spent.most_common(12):
    if t > 0:
        print(f"- {name}: {t * 1000 / hz:.0f} ms ({t * 1000 / hz / max(n, 1):.3f} ms a request)")
PY
}

{
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, fake vLLM ${LATENCY_MS} ms, C=32, batch size 8, max-wait 20 ms."
  echo
  echo "| row | requests | gateway CPU ms/request | context switches/request | p50 ms | load average (1 min) before → after |"
  echo "|---|---:|---:|---:|---:|---|"
  echo "| idle, ${IDLE_SECONDS} s | – | $IDLE of a core | $IDLE_SWITCHES a second | – | $l0 → $IDLE_L1 |"
  echo "| one client, sequential, ${LIGHT_SECONDS} s | $LIGHT_N | $LIGHT_CPU | $LIGHT_SW | $LIGHT_P50 | $LIGHT_L0 → $LIGHT_L1 |"
  echo "| 1,024 connections, 10 s | $MANY_N | $MANY_CPU | $MANY_SW | $MANY_P50 | $MANY_L0 → $MANY_L1 |"
  echo
  echo "The one-client row's CPU by thread (ms; threads of one name summed, the top 12):"
  echo
  by_thread "$OUT/threads-before.tsv" "$OUT/threads-after.tsv" "$LIGHT_N"
  echo
  echo "The 1,024-connection row's, per completion:"
  echo
  by_thread "$OUT/threads-before-many.tsv" "$OUT/threads-after-many.tsv" "$MANY_N"
} | tee "$OUT/results.md"
