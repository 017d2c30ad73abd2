# Shared by the bench scripts.

# A java of version 25 or later: JAVA_HOME's if it is one, else one installed under /usr/lib/jvm.
java25() {
  local candidate
  for candidate in "${JAVA_HOME:-/nonexistent}/bin/java" /usr/lib/jvm/*/bin/java "$(command -v java || true)"; do
    [ -x "$candidate" ] || continue
    local major
    major=$("$candidate" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
    if [ "${major:-0}" -ge 25 ] 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "bench: no Java 25 found (set JAVA_HOME)" >&2
  return 1
}

# A run's start: OUT, its results directory bench/results/[$1-]<UTC time>, made; JAVA, a Java 25; PIDS, the processes
# to stop when the script ends (trap cleanup EXIT).
start_run() {
  OUT=bench/results/${1:+$1-}$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$OUT"
  JAVA=$(java25)
  PIDS=()
  trap cleanup EXIT
}

# The jar, and the test classpath the embedded PostgreSQL runs from.
build_bench() {
  echo "== building" >&2
  ./mvnw -B -q -Pbench -DskipTests package test-compile dependency:build-classpath \
    -Dmdep.includeScope=test -Dmdep.outputFile=target/test-classpath.txt
}

# An embedded PostgreSQL, logging to $1, unless SPRING_DATASOURCE_URL names a database already; exports
# SPRING_DATASOURCE_URL, _USERNAME and _PASSWORD for the gateway. Its process joins PIDS (the caller's clean-up list);
# JAVA is the caller's Java 25.
start_database() {
  local log=$1
  if [ -z "${SPRING_DATASOURCE_URL:-}" ]; then
    echo "== starting an embedded PostgreSQL" >&2
    "$JAVA" -cp "target/test-classes:target/classes:$(cat target/test-classpath.txt)" \
      dev.batchgateway.StandaloneTestDatabase > "$log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 120); do grep -q '^JDBC_PASSWORD=' "$log" && break; sleep 0.5; done
    SPRING_DATASOURCE_URL=$(sed -n 's/^JDBC_URL=//p' "$log")
    SPRING_DATASOURCE_USERNAME=$(sed -n 's/^JDBC_USERNAME=//p' "$log")
    SPRING_DATASOURCE_PASSWORD=$(sed -n 's/^JDBC_PASSWORD=//p' "$log")
  fi
  export SPRING_DATASOURCE_URL SPRING_DATASOURCE_USERNAME="${SPRING_DATASOURCE_USERNAME:-postgres}" \
    SPRING_DATASOURCE_PASSWORD="${SPRING_DATASOURCE_PASSWORD:-postgres}"
}

# Waits until the gateway of pid $1 answers /health on port $2, and fails (pointing at its log $3) if it does not, or if
# another process answers there: a gateway that could not bind its port must not let the bench measure someone else's.
await_gateway() {
  local pid=$1 port=$2 log=$3
  for _ in $(seq 1 120); do curl -fs "localhost:$port/health" >/dev/null && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if ! kill -0 "$pid" 2>/dev/null || ! curl -fs "localhost:$port/health" >/dev/null; then
    echo "the gateway did not start on port $port; see $log" >&2
    exit 1
  fi
}

# The scripts' processes (PIDS, each script's own list) are stopped when the script ends: trap cleanup EXIT.
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }

# A command ($1) from Debian's package ($2) when missing.
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
