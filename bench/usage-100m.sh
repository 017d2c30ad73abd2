#!/usr/bin/env bash
# GET /usage/{user_id} for a month on a token_usage table of 100 million rows (issue 17): loads the rows in time order,
# as the gateway would have written them day after day (the rollup horizon moved back to the first day, so that they go
# in as rows of open days, not late ones), rolls up every day before today as the gateway does (DailyRollups), then
# times /usage with wrk at 1 and 8 connections, for a month with part days at both ends (rollups, the edge day's rows
# and today's rows), a month on midnights (rollups only) and the first by day. Prints and writes
# bench/results/usage-100m-<time>/results.md, with the plans PostgreSQL chose for the repository's SQL. A measurement,
# not a test: nothing is asserted about speed.
#
#   bench/usage-100m.sh                                          # 100,000,000 rows of 100,000 users over 365 days
#   BENCH_ROWS=2000000 BENCH_USERS=10000 bench/usage-100m.sh     # a quick look
#   BENCH_DAYS=60 bench/usage-100m.sh                            # the same rows over 60 days (heavier edge days)
#
# BENCH_CHUNK rows an INSERT (default 5,000,000), BENCH_DURATION (20s) and BENCH_WARMUP (5s) a wrk run,
# BENCH_GATEWAY_PORT (8088; the management port is the next one). The embedded PostgreSQL keeps its files under Java's
# temporary directory (/tmp: Java ignores TMPDIR); SPRING_DATASOURCE_URL (+ _USERNAME, _PASSWORD) uses a database of yours.
# The script stops before building when the free space is clearly short (BENCH_SKIP_SPACE_CHECK=1: do not check).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

ROWS=${BENCH_ROWS:-100000000}
USERS=${BENCH_USERS:-100000}
DAYS=${BENCH_DAYS:-365}
CHUNK=${BENCH_CHUNK:-5000000}
DURATION=${BENCH_DURATION:-20s}
WARMUP=${BENCH_WARMUP:-5s}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-8088}
STARTED=$(date +%s)
start_run usage-100m

need wrk wrk
need psql postgresql-client

# Disk the database needs: measured about 190 bytes a row of token_usage with its two indexes, and about 200 bytes a
# usage_daily row (user, day, model, outcome; below, 3 models and 4 outcomes), expected from rows per user and day; plus
# 3 GB for WAL (max_wal_size 1 GB by default) and the server's binaries.
estimate() { # prints: expected usage_daily rows, bytes needed
  python3 - "$ROWS" "$USERS" "$DAYS" <<'PY'
import math, sys
rows, users, days = map(int, sys.argv[1:])
models = [0.6, 0.3, 0.1]
outcomes = [0.97, 0.02, 0.007, 0.003]
per_user_day = rows / (users * days)
user_days = users * days
daily = sum(user_days * (1 - math.exp(-per_user_day * m * o)) for m in models for o in outcomes)
daily = min(daily, rows)
print(round(daily), round(rows * 190 + daily * 200 + 3 * 2**30))
PY
}
read -r EXPECTED_DAILY NEED_BYTES < <(estimate)
gib() { python3 -c "print(f'{$1 / 2**30:.1f}')"; }
check_space() { # directory
  local free_bytes
  free_bytes=$(($(df --output=avail -k "$1" | tail -1) * 1024))
  if [ "$free_bytes" -lt "$NEED_BYTES" ]; then
    echo "bench: $ROWS rows of $USERS users over $DAYS days need about $(gib "$NEED_BYTES") GiB free where the database" \
      "keeps its files ($1); there are $(gib "$free_bytes") GiB. Free some, or ask for fewer rows (BENCH_ROWS)." >&2
    exit 1
  fi
  echo "== $(gib "$free_bytes") GiB free in $1; about $(gib "$NEED_BYTES") GiB needed" >&2
}
[ -n "${SPRING_DATASOURCE_URL:-}${BENCH_SKIP_SPACE_CHECK:-}" ] || check_space /tmp # the embedded database's directory, before building

build_bench
start_database "$OUT/database.log"
[ -n "$SPRING_DATASOURCE_URL" ] || { echo "bench: the database did not start; see $OUT/database.log" >&2; exit 1; }
# jdbc:postgresql://host:port/db?user=… -> postgresql://user:password@host:port/db
PG_URI=$(echo "$SPRING_DATASOURCE_URL" | sed -E "s#^jdbc:postgresql://([^/?]+)/([^?]*).*#postgresql://$SPRING_DATASOURCE_USERNAME:$SPRING_DATASOURCE_PASSWORD@\1/\2#")
sql() { PGOPTIONS="-c timezone=UTC" psql "$PG_URI" -v ON_ERROR_STOP=1 -Atq "$@"; }

DATA_DIR=$(sql -c "SHOW data_directory" 2>/dev/null || echo "unknown (not a superuser)")
echo "== the database keeps its files in $DATA_DIR" >&2
# a database of yours on this machine: its own file system's space
if [ -n "${BENCH_SKIP_SPACE_CHECK:-}" ]; then :; elif [ -d "$DATA_DIR" ]; then check_space "$DATA_DIR"; fi

echo "== starting the gateway (its migrations create the schema)" >&2
# GATEWAY_AUTH=none: wrk asks for any user's usage, as a trusted proxy would
env SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none GATEWAY_WORKER_TYPE=simulated \
  LOGGING_LEVEL_ROOT=WARN "$JAVA" -jar target/batch-gateway.jar > "$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway.log"

EXISTING=$(sql -c "SELECT count(*) FROM token_usage")
[ "$EXISTING" = 0 ] || echo "bench: token_usage already holds $EXISTING rows; the figures below count them too" >&2
# the gateway stops during the load: its roll-ups every 5 minutes would close the days being loaded
kill "$GATEWAY_PID"
wait "$GATEWAY_PID" 2>/dev/null || true

# The rows' times run from DAYS days before the load's start to its start, in order: chunk k holds the k-th slice of
# time, as the gateway would have written them, so each INSERT fills one or two monthly partitions (usage_daily is
# filled afterwards, by the roll-up). Users uniform in 1..USERS; models 60/30/10 %; outcomes 97 % served, then client_gone, deadline,
# stream_failed; prompts 16-3,016 tokens (median ~770), completions 1-1,024 (median ~260).
LOAD_END=$(sql -c "SELECT to_char(date_trunc('second', now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
SPAN_US=$((DAYS * 86400 * 1000000))
echo "== loading $ROWS rows of $USERS users over the $DAYS days before $LOAD_END, $CHUNK an INSERT" >&2
sql -c "SELECT token_usage_create_partitions(timestamptz '$LOAD_END' - interval '$DAYS days', timestamptz '$LOAD_END' + interval '1 month')" > /dev/null
FIRST_LOADED_DAY=$(sql -c "SELECT ((timestamptz '$LOAD_END' - interval '$DAYS days') AT TIME ZONE 'UTC')::date")
if [ "$EXISTING" = 0 ]; then
  sql -c "SELECT usage_rollup_late_trigger('$FIRST_LOADED_DAY')" \
      -c "UPDATE usage_rollup SET rolled_up_before = '$FIRST_LOADED_DAY', closing_before = '$FIRST_LOADED_DAY'" > /dev/null
fi
load_start=$(date +%s.%N)
for ((first = 0; first < ROWS; first += CHUNK)); do
  last=$((first + CHUNK < ROWS ? first + CHUNK : ROWS))
  t0=$(date +%s.%N)
  sql -c "INSERT INTO token_usage (request_id, user_id, prompt_tokens, completion_tokens, total_tokens, model, created_at, outcome)
    SELECT gen_random_uuid(), user_id, p, c, p + c, model, created_at, outcome
    FROM (SELECT 1 + floor(ru * $USERS)::bigint AS user_id,
                 16 + floor(rp * rp * 3000)::int AS p,
                 1 + floor(rc * rc * 1024)::int AS c,
                 CASE WHEN rm < 0.6 THEN 'llama-3.2-1b' WHEN rm < 0.9 THEN 'qwen2.5-1.5b' ELSE 'mistral-7b' END AS model,
                 timestamptz '$LOAD_END' - interval '$DAYS days' + (g + rt) * ($SPAN_US::float8 / $ROWS) * interval '1 microsecond' AS created_at,
                 CASE WHEN ro < 0.97 THEN 'served' WHEN ro < 0.99 THEN 'client_gone' WHEN ro < 0.997 THEN 'deadline'
                      ELSE 'stream_failed' END AS outcome
          FROM (SELECT g, random() AS ru, random() AS rp, random() AS rc, random() AS rm, random() AS rt, random() AS ro
                FROM generate_series($first::bigint, $((last - 1))::bigint) g) AS drawn) AS made"
  python3 -c "
import time
now = time.time()
print(f'   {$last:>13,} rows ({$last * 100 / $ROWS:5.1f} %): {($last - $first) / (now - $t0):9,.0f} rows/s this INSERT, {$last / (now - $load_start):9,.0f} so far, {now - $load_start:7.0f} s')" >&2
done
load_secs=$(python3 -c "print(f'{$(date +%s.%N) - $load_start:.0f}')")
echo "== VACUUM ANALYZE token_usage" >&2
vacuum_start=$(date +%s)
sql -c "VACUUM ANALYZE token_usage"
vacuum_secs=$(($(date +%s) - vacuum_start))
# what DailyRollups does: close the days before today, then roll them up one a transaction
echo "== rolling up the days before today" >&2
sql -c "SELECT usage_rollup_close((now() AT TIME ZONE 'UTC')::date)" > /dev/null
to_roll=$(sql -c "SELECT closing_before - rolled_up_before FROM usage_rollup")
# one transaction a day (psql's autocommit), each timed by psql
roll_ups=(-c '\timing on')
for _ in $(seq 1 "$to_roll"); do roll_ups+=(-c "SELECT usage_rollup_day()"); done
sql "${roll_ups[@]}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' > "$OUT/rollup-ms.txt"
ROLLUP="$to_roll days rolled up in $(python3 - "$OUT/rollup-ms.txt" <<'PY'
import sys
ms = sorted(float(line) for line in open(sys.argv[1]))
print(f"{sum(ms) / 1000:.0f} s ({sum(ms) / len(ms) / 1000:.2f} s a day on average, the slowest {ms[-1] / 1000:.2f} s)" if ms else "0 s")
PY
)"
echo "== $ROLLUP" >&2
sql -c "VACUUM ANALYZE usage_daily"

read -r rows rows_rolled rolled daily partitions rows_bytes daily_bytes db_bytes < <(sql -F ' ' -c "
  SELECT (SELECT count(*) FROM token_usage),
         (SELECT count(*) FROM token_usage WHERE created_at < (SELECT rolled_up_before::timestamp AT TIME ZONE 'UTC' FROM usage_rollup)),
         (SELECT coalesce(sum(requests), 0) FROM usage_daily),
         (SELECT count(*) FROM usage_daily),
         (SELECT count(*) FROM pg_inherits WHERE inhparent = 'token_usage'::regclass),
         (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'token_usage'::regclass),
         pg_total_relation_size('usage_daily'), pg_database_size(current_database())")
size() { sql -c "SELECT pg_size_pretty($1::bigint)"; }
SIZES="token_usage $(size "$rows_bytes") in $partitions partitions ($((rows_bytes / (rows > 0 ? rows : 1))) bytes a row with its indexes), usage_daily $(size "$daily_bytes") ($((daily_bytes / (daily > 0 ? daily : 1))) bytes a row), database $(size "$db_bytes")"
LOAD_RATE=$(python3 -c "print(f'{($rows - $EXISTING) / max($load_secs, 1):,.0f}')")
echo "== $rows rows (loaded in $load_secs s, $LOAD_RATE rows/s; VACUUM ANALYZE $vacuum_secs s), $daily usage_daily rows" \
  "(expected ~$EXPECTED_DAILY), summing $rolled requests; $SIZES" >&2
[ "$rolled" = "$rows_rolled" ] || echo "bench: usage_daily sums $rolled requests, token_usage has $rows_rolled rows of the days rolled up: not coherent" >&2

echo "== starting the gateway again" >&2
env SERVER_PORT="$GATEWAY_PORT" MANAGEMENT_SERVER_PORT=$((GATEWAY_PORT + 1)) GATEWAY_AUTH=none GATEWAY_WORKER_TYPE=simulated \
  LOGGING_LEVEL_ROOT=WARN "$JAVA" -jar target/batch-gateway.jar >> "$OUT/gateway.log" 2>&1 &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
await_gateway "$GATEWAY_PID" "$GATEWAY_PORT" "$OUT/gateway.log"

# A month ending now with part days at both ends, and a month of whole days ending at today's midnight (UTC)
FROM=$(date -u -d "30 days ago 13:37:00" +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FROM_MIDNIGHT=$(date -u -d "30 days ago" +%Y-%m-%dT00:00:00Z)
TO_MIDNIGHT=$(date -u +%Y-%m-%dT00:00:00Z)
FIRST_DAY=$(date -u -d "29 days ago" +%Y-%m-%d) # the first whole day of the first window, its end is TO_MIDNIGHT

# Does the gateway's answer equal the rows' own sums for a few users? (the rollups and edge rows agree with the rows)
coherent=yes
for user in 1 $((USERS / 2)) "$USERS"; do
  curl -fs "localhost:$GATEWAY_PORT/usage/$user?from=$FROM&to=$TO" > "$OUT/usage-$user.json"
  answer=$(python3 -c "import json; u = json.load(open('$OUT/usage-$user.json')); print(u['requests'], u['prompt_tokens'], u['completion_tokens'])")
  direct=$(sql -F ' ' -c "SELECT count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) FROM token_usage
                          WHERE user_id = $user AND created_at >= '$FROM' AND created_at < '$TO'")
  echo "== user $user, $FROM to $TO: the gateway says $answer (requests, prompt, completion tokens), the rows $direct" >&2
  [ "$answer" = "$direct" ] || coherent="no (user $user: $answer from the gateway, $direct from the rows)"
done

TABLE="$OUT/results.md"
{
  echo "| window | conn. | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
} > "$TABLE"
measure() { # name, connections, query
  local name=$1 connections=$2 query=$3 file summary
  file="$OUT/wrk-$connections-${name//[ ,]/-}.txt"
  USAGE_USERS=$USERS USAGE_QUERY="$query" wrk -t 1 -c "$connections" -d "$WARMUP" -s bench/usage.lua \
    "http://localhost:$GATEWAY_PORT" > /dev/null 2>&1 || true
  USAGE_USERS=$USERS USAGE_QUERY="$query" wrk -t 1 -c "$connections" -d "$DURATION" --timeout 10s -s bench/usage.lua \
    "http://localhost:$GATEWAY_PORT" > "$file" 2>&1 || true
  summary=$(sed -n 's/^WRK_SUMMARY //p' "$file")
  [ -n "$summary" ] || { echo "wrk failed: $(cat "$file")" >&2; exit 1; }
  python3 - "$name" "$connections" "$summary" >> "$TABLE" <<'PY'
import json, sys
name, conns, summary = sys.argv[1:]
s = json.loads(summary)
errors = s["non2xx"] + s["connect"] + s["read"] + s["write"] + s["timeout"]
print(f"| {name} | {conns} | {s['requests'] / (s['duration_us'] / 1e6):.0f} | {s['p50_us'] / 1000:.1f} | "
      f"{s['p90_us'] / 1000:.1f} | {s['p99_us'] / 1000:.1f} | {s['max_us'] / 1000:.1f} | {errors} |")
PY
  tail -1 "$TABLE" >&2
}
echo "== GET /usage/{1..$USERS}, $WARMUP warm-up then $DURATION a row" >&2
for connections in 1 8; do
  measure "a month, part days at both ends" "$connections" "?from=$FROM&to=$TO"
  measure "a month of whole days" "$connections" "?from=$FROM_MIDNIGHT&to=$TO_MIDNIGHT"
  measure "a month, part days, by day" "$connections" "?from=$FROM&to=$TO&group_by=day"
done

# The SQL JdbcUsageTotals runs for one user's window (its text, with the parameters it binds): the head day's rows, the
# whole days' rollups up to the rollup horizon, the rows from there on (today's and the tail's). Prepared, as the JDBC
# driver does it after five calls; the custom plan is what a call with these values gets, the generic one what
# PostgreSQL may switch to for a statement prepared long ago.
USER_EXPLAINED=$(((USERS + 1) / 2))
HORIZON="WITH horizon AS MATERIALIZED (
    SELECT rolled_up_before AS day, rolled_up_before::timestamp AT TIME ZONE 'UTC' AS at FROM usage_rollup)"
PREPARE="PREPARE usage_month(bigint, timestamptz, timestamptz, date, date, timestamptz, timestamptz, timestamptz) AS
$HORIZON
SELECT grp, outcome, sum(requests), sum(prompt_tokens), sum(completion_tokens) FROM (
SELECT '', outcome, 1, prompt_tokens, completion_tokens
FROM token_usage
WHERE true AND user_id = \$1 AND created_at >= \$2 AND created_at < \$3
UNION ALL
SELECT '', outcome, requests, prompt_tokens, completion_tokens
FROM usage_daily
WHERE true AND user_id = \$1 AND day >= \$4 AND day < least(\$5, (SELECT day FROM horizon))
UNION ALL
SELECT '', outcome, 1, prompt_tokens, completion_tokens
FROM token_usage
WHERE true AND user_id = \$1 AND created_at >= greatest(\$6, least(\$7, (SELECT at FROM horizon))) AND created_at < \$8
) AS counted (grp, outcome, requests, prompt_tokens, completion_tokens) GROUP BY grp, outcome;
PREPARE usage_days(bigint, date, date, timestamptz, timestamptz, timestamptz) AS
$HORIZON
SELECT grp, outcome, sum(requests), sum(prompt_tokens), sum(completion_tokens) FROM (
SELECT '', outcome, requests, prompt_tokens, completion_tokens
FROM usage_daily
WHERE true AND user_id = \$1 AND day >= \$2 AND day < least(\$3, (SELECT day FROM horizon))
UNION ALL
SELECT '', outcome, 1, prompt_tokens, completion_tokens
FROM token_usage
WHERE true AND user_id = \$1 AND created_at >= greatest(\$4, least(\$5, (SELECT at FROM horizon))) AND created_at < \$6
) AS counted (grp, outcome, requests, prompt_tokens, completion_tokens) GROUP BY grp, outcome;"
MONTH_ARGS="$USER_EXPLAINED, '$FROM', '${FIRST_DAY}T00:00:00Z', '$FIRST_DAY', '${TO_MIDNIGHT%T*}', '${FIRST_DAY}T00:00:00Z', '$TO_MIDNIGHT', '$TO'"
DAYS_ARGS="$USER_EXPLAINED, '${FROM_MIDNIGHT%T*}', '${TO_MIDNIGHT%T*}', '$FROM_MIDNIGHT', '$TO_MIDNIGHT', '$TO_MIDNIGHT'"
# each after two runs in the same session, as in the gateway's pooled connections: the planning time shown is a warm one
explain() { # statement, its arguments, file; then settings for the session
  local statement=$1 args=$2 file=$3; shift 3
  sql -c "$PREPARE" "$@" -c '\o /dev/null' -c "EXECUTE $statement($args)" -c "EXECUTE $statement($args)" -c '\o' \
    -c "EXPLAIN (ANALYZE, BUFFERS) EXECUTE $statement($args)" > "$file"
}
explain usage_month "$MONTH_ARGS" "$OUT/explain-part-days.txt"
explain usage_month "$MONTH_ARGS" "$OUT/explain-part-days-generic.txt" -c "SET plan_cache_mode = force_generic_plan"
explain usage_days "$DAYS_ARGS" "$OUT/explain-whole-days.txt"
{
  echo "-- user $USER_EXPLAINED, $FROM to $TO: the statement JdbcUsageTotals runs, its parameters, and its plan"
  echo "$PREPARE" | sed -n '1,/GROUP BY/p'
  echo "EXECUTE usage_month($MONTH_ARGS);"
  echo
  cat "$OUT/explain-part-days.txt"
} > "$OUT/explain.txt"

PG_SETTINGS=$(sql -F ' ' -c "SELECT current_setting('server_version'), current_setting('shared_buffers'), current_setting('work_mem')")
{
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB,"
  echo "PostgreSQL ${PG_SETTINGS%% *} (shared_buffers $(echo "$PG_SETTINGS" | cut -d' ' -f2), work_mem ${PG_SETTINGS##* }) in $DATA_DIR, the gateway and wrk on the"
  echo "same machine. $rows rows of $USERS users over the $DAYS days before $LOAD_END ($partitions partitions with the default one), loaded in"
  echo "$load_secs s ($LOAD_RATE rows/s, $CHUNK rows an INSERT; VACUUM ANALYZE $vacuum_secs s); $ROLLUP; $daily usage_daily rows."
  echo "On disk: $SIZES."
  echo "Windows: $FROM to $TO (part days), $FROM_MIDNIGHT to $TO_MIDNIGHT (whole days); random users; $WARMUP warm-up, $DURATION a row."
  echo "The gateway's answers equal the rows' sums (users 1, $((USERS / 2)), $USERS): $coherent."
  echo "Plans: explain.txt (part days, custom plan), explain-part-days-generic.txt, explain-whole-days.txt."
} >> "$TABLE"
echo
cat "$OUT/explain.txt"
echo
cat "$TABLE"
echo
echo "(results in $OUT; $(($(date +%s) - STARTED)) s in all)"
