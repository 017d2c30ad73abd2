#!/usr/bin/env bash
# One command: the Prometheus alert rules and the Grafana dashboard of deploy/ checked against the real thing.
#  1. promtool check config (deploy/prometheus/prometheus.yml and the rules it loads), promtool test rules
#     (deploy/prometheus/alerts.test.yml: every alert fires on the trouble it names, and not on normal traffic);
#  2. the dashboard is valid Grafana dashboard JSON whose data sources are the provisioned ones;
#  3. a gateway under load (vLLM worker type against bench/FakeVllm.java, two server URLs, one PostgreSQL) with a real
#     Prometheus scraping it, configured by deploy/prometheus/prometheus.yml itself (target and intervals changed);
#     then every PromQL expression of the dashboard and of the alert rules Prometheus loaded, and the dashboard's SQL
#     against the usage database, must return data. A renamed metric would otherwise blank a panel silently.
#
#   deploy/observability-check.sh                    # builds target/batch-gateway.jar first if it is missing
#
# Installs what it lacks from Debian's packages (prometheus, postgresql). Listens on 127.0.0.1 only, ports 18200-18204
# (OBSERVABILITY_CHECK_BASE_PORT moves them), and stops everything it started when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

LOAD_SECONDS=${OBSERVABILITY_CHECK_LOAD_SECONDS:-40}
BASE_PORT=${OBSERVABILITY_CHECK_BASE_PORT:-18200}
API_PORT=$BASE_PORT
MANAGEMENT_PORT=$((BASE_PORT + 1))
FAKE_PORT=$((BASE_PORT + 2))
PG_PORT=$((BASE_PORT + 3))
PROMETHEUS_PORT=$((BASE_PORT + 4))

began=$(date +%s)
WORK=$(mktemp -d /tmp/observability-check.XXXXXX)
chmod 755 "$WORK"
PIDS=()
GATEWAY_PID=
PG_BIN=
say() { echo "observability-check [$(( $(date +%s) - began ))s] $*" >&2; }

cleanup() {
  local status=$? pid
  [ -n "$GATEWAY_PID" ] && kill "$GATEWAY_PID" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$PG_BIN" ] && as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  if [ "$status" = 0 ]; then rm -rf "$WORK"; else echo "observability-check: logs in $WORK" >&2; fi
}
trap cleanup EXIT

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
install_debian() { # package names; one apt-get update per run
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- what it needs
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  say "installing prometheus (and promtool) from Debian's packages"
  install_debian prometheus
  # the package starts its own service where systemd runs; this check starts its own Prometheus
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PG_BIN" ]; then
  say "installing postgresql from Debian's packages"
  install_debian postgresql
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
command -v psql >/dev/null || install_debian postgresql-client
JAVA=$(java25)
for port in "$API_PORT" "$MANAGEMENT_PORT" "$FAKE_PORT" "$PG_PORT" "$PROMETHEUS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is taken: set OBSERVABILITY_CHECK_BASE_PORT to move ports $BASE_PORT-$((BASE_PORT + 4))"
    exit 1
  fi
done

# --- 1. the rules, as promtool sees them
say "$(prometheus --version 2>&1 | head -1)"
promtool check config deploy/prometheus/prometheus.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)

# --- 2. the dashboard's structure
python3 deploy/observability-check.py validate

if [ ! -f target/batch-gateway.jar ]; then
  say "building target/batch-gateway.jar"
  ./mvnw -B -q -DskipTests package
fi

# --- 3. a live gateway under load, scraped by a real Prometheus
say "starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PG_PORT"
mkdir -p "$WORK/pg" "$WORK/pg-run"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg" "$WORK/pg-run"
as_postgres "$PG_BIN/initdb" -D "$WORK/pg" -U postgres -A trust >"$WORK/initdb.log" 2>&1
as_postgres "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg-run/postgres.log" -w -o \
  "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $WORK/pg-run -c fsync=off" start >/dev/null
PSQL=(psql -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)

"$JAVA" bench/FakeVllm.java "$FAKE_PORT" 20 >"$WORK/fake-vllm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 120); do curl -fs "127.0.0.1:$FAKE_PORT/health" >/dev/null && break; sleep 0.5; done

# two URLs of the one fake vLLM: a pool of two servers, so the per-server panels have more than one line
ADMIN_TOKEN="observability-check-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
say "starting the gateway (API 127.0.0.1:$API_PORT, management :$MANAGEMENT_PORT)"
env GATEWAY_WORKER_TYPE=vllm GATEWAY_WORKER_URL="http://127.0.0.1:$FAKE_PORT,http://localhost:$FAKE_PORT" \
  GATEWAY_WORKER_MODEL=fake GATEWAY_ADMIN_TOKEN="$ADMIN_TOKEN" GATEWAY_LOG_FORMAT= GATEWAY_USAGE_JOURNAL_DIR="$WORK/journal" \
  SERVER_PORT="$API_PORT" SERVER_ADDRESS=127.0.0.1 \
  MANAGEMENT_SERVER_PORT="$MANAGEMENT_PORT" MANAGEMENT_SERVER_ADDRESS=127.0.0.1 \
  SPRING_DATASOURCE_URL="jdbc:postgresql://127.0.0.1:$PG_PORT/postgres" SPRING_DATASOURCE_USERNAME=postgres \
  SPRING_DATASOURCE_PASSWORD=unused JDK_JAVA_OPTIONS="-Xmx384m" \
  bin/batch-gateway >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
for _ in $(seq 1 360); do
  curl -fs "127.0.0.1:$MANAGEMENT_PORT/actuator/health/readiness" >/dev/null && break
  kill -0 "$GATEWAY_PID" 2>/dev/null || { say "the gateway died"; tail -5 "$WORK/gateway.log" >&2; exit 1; }
  sleep 0.5
done
curl -fs "127.0.0.1:$MANAGEMENT_PORT/actuator/health/readiness" >/dev/null || { say "gateway not ready in 180 s"; exit 1; }

# deploy/prometheus/prometheus.yml itself, pointed at this gateway and scraping every 2 s; its rules beside it
cp deploy/prometheus/alerts.yml "$WORK/alerts.yml"
sed -e "s#\"gateway:8081\"#\"127.0.0.1:$MANAGEMENT_PORT\"#" -e 's#scrape_interval: 15s#scrape_interval: 2s#' \
    -e 's#evaluation_interval: 15s#evaluation_interval: 2s#' deploy/prometheus/prometheus.yml >"$WORK/prometheus.yml"
grep -q "127.0.0.1:$MANAGEMENT_PORT" "$WORK/prometheus.yml" || { say "prometheus.yml lacks the target gateway:8081"; exit 1; }
promtool check config "$WORK/prometheus.yml" >/dev/null
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do curl -fs "127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null && break; sleep 0.5; done

# ten users' keys, then load: ClusterLoad (deploy/) with 64 connections straight at the gateway
: >"$WORK/keys"
for user in $(seq 1 10); do
  created=$(curl -fs "127.0.0.1:$API_PORT/admin/keys" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d "{\"user_id\": $user, \"name\": \"observability-check\"}")
  echo "$created" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p' >>"$WORK/keys"
done
[ "$(grep -c . "$WORK/keys")" = 10 ] || { say "could not create the API keys"; exit 1; }
say "load: 64 connections for $LOAD_SECONDS s, Prometheus scraping every 2 s"
"$JAVA" deploy/ClusterLoad.java "http://127.0.0.1:$API_PORT" "$WORK/keys" 64 "$LOAD_SECONDS" $((LOAD_SECONDS + 60)) \
  "$WORK/load.stop" "$WORK/answered-ids" "$WORK/errors" >"$WORK/load.out" 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
# a few answers that are not 200, as any day has (the error-ratio alert reads the 5xx series): 400, 401, 504
KEY=$(head -1 "$WORK/keys")
statuses=$(for body in '{"prompt": 1}' '{"prompt": "a deadline of 1 ms"}'; do
  curl -s -o /dev/null -w '%{http_code} ' "127.0.0.1:$API_PORT/complete" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -H 'Request-Timeout: 0.001' -d "$body"
done; curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$API_PORT/complete" -H 'Content-Type: application/json' -d '{"prompt": "no key"}')
[ "$statuses" = "400 504 401" ] || { say "expected answers 400 504 401, got $statuses"; exit 1; }
# the queries run while the load is on, with at least 30 s of it scraped (rates over 30 s, rules over minutes)
sleep $((LOAD_SECONDS - 5))

say "evaluating every query of the dashboard and the alert rules against Prometheus (http://127.0.0.1:$PROMETHEUS_PORT)"
python3 deploy/observability-check.py evaluate "http://127.0.0.1:$PROMETHEUS_PORT" "${PSQL[@]}"

touch "$WORK/load.stop"
set +e; wait "$LOAD_PID"; set -e
sed -n 's/^LOAD /load: /p' "$WORK/load.out" >&2
say "took $(( $(date +%s) - began )) s"
echo "observability-check: passed"
