#!/usr/bin/env bash
# One command: three gateways behind nginx (deploy/nginx/nginx.conf), one PostgreSQL, the fake vLLM from bench/;
# steady load through nginx while every instance in turn is stopped with SIGTERM, waited for, started again and
# waited for until ready. Then it checks, and prints: no answer but 2xx, usage rows = 2xx answers exactly (the same
# request ids), no request_id twice, and which instance served what share. Exit code 0 only if every check passed.
#
#   deploy/cluster-check.sh                          # builds target/batch-gateway.jar first if it is missing
#   CLUSTER_CHECK_CONNECTIONS=200 CLUSTER_CHECK_SECONDS=60 deploy/cluster-check.sh
#   CLUSTER_CHECK_KEEP_LOGS=1 deploy/cluster-check.sh   # keeps the logs and the database when it passes too
#
# Installs what it lacks from Debian's packages (nginx, postgresql). Listens on 127.0.0.1 only, ports 18100-18123
# (CLUSTER_CHECK_BASE_PORT moves them), and stops everything it started when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

CONNECTIONS=${CLUSTER_CHECK_CONNECTIONS:-200}
MIN_SECONDS=${CLUSTER_CHECK_SECONDS:-60}   # load lasts at least this long, and until the rolling restart is over
MAX_SECONDS=${CLUSTER_CHECK_MAX_SECONDS:-600}
LATENCY_MS=${CLUSTER_CHECK_WORKER_LATENCY_MS:-100}
BASE_PORT=${CLUSTER_CHECK_BASE_PORT:-18100}
NGINX_PORT=$BASE_PORT
FAKE_PORT=$((BASE_PORT + 1))
PG_PORT=$((BASE_PORT + 2))
INSTANCES=(1 2 3)
api_port() { echo $((BASE_PORT + 10 + $1)); }
management_port() { echo $((BASE_PORT + 20 + $1)); }

began=$(date +%s)
WORK=$(mktemp -d /tmp/cluster-check.XXXXXX)
chmod 755 "$WORK"
declare -A GATEWAY_PIDS=()
OTHER_PIDS=()
PG_BIN=
say() { echo "cluster-check [$(( $(date +%s) - began ))s] $*" >&2; }

cleanup() {
  local status=$? pid
  for pid in "${GATEWAY_PIDS[@]}" "${OTHER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -n "$PG_BIN" ] && as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  # the logs and the database (about 40 MB) are kept only when something failed, or CLUSTER_CHECK_KEEP_LOGS=1
  if [ "$status" = 0 ] && [ -z "${CLUSTER_CHECK_KEEP_LOGS:-}" ]; then rm -rf "$WORK"; else echo "cluster-check: logs in $WORK" >&2; fi
}
trap cleanup EXIT

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
install_debian() { # package names; one apt-get update per run
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- what it needs
command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
command -v nginx >/dev/null || { say "installing nginx from Debian's packages"; install_debian nginx; }
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PG_BIN" ]; then
  say "installing postgresql from Debian's packages"
  install_debian postgresql
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
command -v psql >/dev/null || install_debian postgresql-client
JAVA=$(java25)
if [ ! -f target/batch-gateway.jar ]; then
  say "building target/batch-gateway.jar"
  ./mvnw -B -q -DskipTests package
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
for port in "$NGINX_PORT" "$FAKE_PORT" "$PG_PORT" $(for i in "${INSTANCES[@]}"; do api_port "$i"; management_port "$i"; done); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is taken (another cluster check?): set CLUSTER_CHECK_BASE_PORT to move ports $BASE_PORT-$((BASE_PORT + 23))"
    exit 1
  fi
done

# --- PostgreSQL: a fresh cluster in the work directory
say "starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PG_PORT"
mkdir -p "$WORK/pg" "$WORK/pg-run"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg" "$WORK/pg-run"
as_postgres "$PG_BIN/initdb" -D "$WORK/pg" -U postgres -A trust >"$WORK/initdb.log" 2>&1
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg-run/postgres.log" -w -o \
  "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $WORK/pg-run -c max_connections=100 -c fsync=off" start >/dev/null
PSQL=(psql -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)

# --- the fake vLLM
"$JAVA" bench/FakeVllm.java "$FAKE_PORT" "$LATENCY_MS" >"$WORK/fake-vllm.log" 2>&1 &
OTHER_PIDS+=($!)
for _ in $(seq 1 120); do curl -fs "127.0.0.1:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done

# --- the gateways
ADMIN_TOKEN="cluster-check-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
start_gateway() { # instance number; the JVM's pid in GATEWAY_PIDS
  local i=$1
  env GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://127.0.0.1:$FAKE_PORT" GATEWAY_WORKER_MODEL=fake \
    GATEWAY_ADMIN_TOKEN="$ADMIN_TOKEN" GATEWAY_LOG_FORMAT= GATEWAY_USAGE_JOURNAL_DIR="$WORK/journal" \
    SERVER_PORT="$(api_port "$i")" SERVER_ADDRESS=127.0.0.1 \
    MANAGEMENT_SERVER_PORT="$(management_port "$i")" MANAGEMENT_SERVER_ADDRESS=127.0.0.1 \
    SPRING_DATASOURCE_URL="jdbc:postgresql://127.0.0.1:$PG_PORT/postgres" SPRING_DATASOURCE_USERNAME=postgres \
    SPRING_DATASOURCE_PASSWORD=unused JDK_JAVA_OPTIONS="-Xmx384m" \
    bin/batch-gateway >>"$WORK/gateway-$i.log" 2>&1 &
  GATEWAY_PIDS[$i]=$!
}
await_ready() { # instance number; fails after 180 s
  local i=$1
  for _ in $(seq 1 360); do
    curl -fs "127.0.0.1:$(management_port "$i")/actuator/health/readiness" >/dev/null && return 0
    kill -0 "${GATEWAY_PIDS[$i]}" 2>/dev/null || { say "gateway $i died; see $WORK/gateway-$i.log"; tail -5 "$WORK/gateway-$i.log" >&2; exit 1; }
    sleep 0.5
  done
  say "gateway $i not ready within 180 s"; exit 1
}
say "starting 3 gateways (API ports $(api_port 1)-$(api_port 3)), Flyway migrating the empty database as they come up"
for i in "${INSTANCES[@]}"; do start_gateway "$i"; done
for i in "${INSTANCES[@]}"; do await_ready "$i"; done

# --- nginx with deploy/nginx/nginx.conf: the same file, local addresses and paths
sed -e "s#server gateway-1:8080#server 127.0.0.1:$(api_port 1)#" \
    -e "s#server gateway-2:8080#server 127.0.0.1:$(api_port 2)#" \
    -e "s#server gateway-3:8080#server 127.0.0.1:$(api_port 3)#" \
    -e "s#listen 80;#listen 127.0.0.1:$NGINX_PORT;#" \
    -e "s#/var/log/nginx/#$WORK/nginx-#g" \
    deploy/nginx/nginx.conf >"$WORK/nginx.conf"
for i in "${INSTANCES[@]}"; do
  grep -q "server 127.0.0.1:$(api_port "$i") " "$WORK/nginx.conf" || { say "deploy/nginx/nginx.conf lacks server gateway-$i:8080"; exit 1; }
done
NGINX=(nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" -g "pid $WORK/nginx.pid;")
"${NGINX[@]}" -t -q
"${NGINX[@]}"
for _ in $(seq 1 40); do curl -fs "127.0.0.1:$NGINX_PORT/health" >/dev/null && break; sleep 0.25; done

# --- API keys for ten users, created through nginx with the admin API
: >"$WORK/keys"
for user in $(seq 1 10); do
  created=$(curl -fs "127.0.0.1:$NGINX_PORT/admin/keys" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d "{\"user_id\": $user, \"name\": \"cluster-check\"}")
  echo "$created" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p' >>"$WORK/keys"
done
[ "$(grep -c . "$WORK/keys")" = 10 ] || { say "could not create the API keys"; exit 1; }

# --- load, and meanwhile the rolling restart
say "load: $CONNECTIONS connections through nginx for at least $MIN_SECONDS s (fake vLLM: $LATENCY_MS ms a call)"
# the load generator yields the CPU to the gateways: on two cores at full speed it left a restarted gateway a quarter of
# a core, 63-83 s from start to ready (30-36 s so; about 450 requests a second still go through)
nice -n 10 "$JAVA" deploy/ClusterLoad.java "http://127.0.0.1:$NGINX_PORT" "$WORK/keys" "$CONNECTIONS" "$MIN_SECONDS" \
  "$MAX_SECONDS" "$WORK/load.stop" "$WORK/answered-ids" "$WORK/errors" >"$WORK/load.out" 2>&1 &
LOAD_PID=$!
OTHER_PIDS+=("$LOAD_PID")
sleep 10
RESTARTS=()
for i in "${INSTANCES[@]}"; do
  t0=$(date +%s.%N)
  kill -TERM "${GATEWAY_PIDS[$i]}"
  set +e; wait "${GATEWAY_PIDS[$i]}"; code=$?; set -e
  t1=$(date +%s.%N)
  start_gateway "$i"
  await_ready "$i"
  t2=$(date +%s.%N)
  # back in nginx's rotation: it served a request again (after fail_timeout), before the next one stops
  before=$(grep -c "upstream=\"[^\"]*127.0.0.1:$(api_port "$i")\" upstream_status=\"[^\"]*200\"" "$WORK/nginx-batch-gateway.access.log" || true)
  for _ in $(seq 1 120); do
    now=$(grep -c "upstream=\"[^\"]*127.0.0.1:$(api_port "$i")\" upstream_status=\"[^\"]*200\"" "$WORK/nginx-batch-gateway.access.log" || true)
    [ "$now" -gt "$before" ] && break
    sleep 0.25
  done
  t3=$(date +%s.%N)
  line=$(awk -v i="$i" -v code="$code" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" 'BEGIN {
    printf "gateway %s: SIGTERM -> exit %s after %.1f s; start -> ready %.1f s; serving again %.1f s later", i, code, t1 - t0, t2 - t1, t3 - t2 }')
  say "$line"
  RESTARTS+=("$line")
  [ "$code" = 143 ] || { say "gateway $i exited with $code, not 143"; exit 1; }
done
touch "$WORK/load.stop"
set +e; wait "$LOAD_PID"; set -e
cat "$WORK/load.out" >&2

# --- stop everything gracefully: every usage row is written before a gateway exits
for i in "${INSTANCES[@]}"; do kill -TERM "${GATEWAY_PIDS[$i]}"; done
for i in "${INSTANCES[@]}"; do set +e; wait "${GATEWAY_PIDS[$i]}"; set -e; done
GATEWAY_PIDS=()
kill "$(cat "$WORK/nginx.pid")" && rm -f "$WORK/nginx.pid"

# --- checks
"${PSQL[@]}" -c "select request_id from token_usage" | sort >"$WORK/row-ids"
sort "$WORK/answered-ids" >"$WORK/answered-ids.sorted"
summary=$(sed -n 's/^LOAD //p' "$WORK/load.out")
requests=$(echo "$summary" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
ok=$(echo "$summary" | sed -n 's/.* ok=\([0-9]*\).*/\1/p')
other=$(echo "$summary" | sed -n 's/.* other=\([0-9]*\).*/\1/p')
rows=$(grep -c . "$WORK/row-ids" || true)
duplicates=$(uniq -d "$WORK/answered-ids.sorted" | grep -c . || true)
unbilled=$(comm -23 "$WORK/answered-ids.sorted" "$WORK/row-ids" | grep -c . || true)
unanswered=$(comm -13 "$WORK/answered-ids.sorted" "$WORK/row-ids" | grep -c . || true)
drains=$(cat "$WORK"/gateway-*.log | grep -c "drain ended, every request answered; every usage row written" || true)
LOG="$WORK/nginx-batch-gateway.access.log"
retried=$(grep -c 'upstream_status="[^"]*,' "$LOG" || true)
retried_503=$(grep -c 'upstream_status="503,' "$LOG" || true)

echo
echo "## Rolling restart under load ($(date -u +%Y-%m-%d), $(nproc) cores)"
echo
echo "3 gateways behind nginx, one PostgreSQL, fake vLLM $LATENCY_MS ms a call; $CONNECTIONS connections."
for line in "${RESTARTS[@]}"; do echo "- $line"; done
echo
echo "| check | result |"
echo "|---|---|"
echo "| requests answered | $requests in $(echo "$summary" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p') s ($(echo "$summary" | sed -n 's/.*rate=\([0-9]*\/s\).*/\1/p')) |"
echo "| answers not 2xx (incl. transport errors) | $other |"
echo "| usage rows / 2xx answers | $rows / $ok |"
echo "| 2xx without a row / rows without a 2xx | $unbilled / $unanswered |"
echo "| request_id answered twice | $duplicates |"
echo "| sent again by nginx (503 / refused or closed) | $retried ($retried_503 / $((retried - retried_503))) |"
echo "| drains that ended with every request answered and every row written | $drains of 6 |"
for i in "${INSTANCES[@]}"; do
  served=$(grep '"POST /complete HTTP/1.1" 200 ' "$LOG" | grep -c "upstream=\"\\([^\"]*, \\)\\?127.0.0.1:$(api_port "$i")\"" || true)
  echo "| served by gateway $i | $served ($(( ok > 0 ? served * 100 / ok : 0 ))%) |"
done
echo

failed=0
check() { if eval "$1"; then :; else echo "FAILED: $2" >&2; failed=1; fi; }
check '[ "$other" = 0 ]' "$other answers were not 2xx (first ones: $(head -3 "$WORK/errors" | cut -c1-200))"
check '[ "$ok" -gt 0 ] && [ "$ok" = "$requests" ]' "not every request was answered 2xx"
check '[ "$rows" = "$ok" ] && [ "$unbilled" = 0 ] && [ "$unanswered" = 0 ]' "usage rows differ from the 2xx answers"
check '[ "$duplicates" = 0 ]' "$duplicates request ids were answered twice"
check '[ "$drains" = 6 ]' "only $drains of 6 drains ended with every request answered and every usage row written"
say "took $(( $(date +%s) - began )) s"
[ "$failed" = 0 ] && echo "cluster-check: passed" || { echo "cluster-check: FAILED" >&2; exit 1; }
