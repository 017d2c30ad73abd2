#!/usr/bin/env bash
# Every curl example of the README and of docs/*.md, pasted against ./mvnw spring-boot:test-run as a reader would, and each answer
# checked against the one the README shows (.ci/readme-examples.py). Needs the compiled test classes (after verify).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v jq >/dev/null; then # the README's examples use it to keep a key's id
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
management_port="$(free_port)"
log="$(mktemp)"
journal="$(mktemp -d)"
SERVER_PORT="$port" MANAGEMENT_SERVER_PORT="$management_port" GATEWAY_USAGE_JOURNAL_DIR="$journal" \
  setsid ./mvnw -B -o -q spring-boot:test-run >"$log" 2>&1 &
test_run=$!
trap 'kill -TERM -- -"$test_run" 2>/dev/null || true; wait "$test_run" 2>/dev/null || true; rm -rf "$log" "$journal"' EXIT
for _ in $(seq 1 180); do
  grep -q "Batch Gateway is up" "$log" && break
  if ! kill -0 "$test_run" 2>/dev/null; then
    echo "FAILED: test-run stopped before it was up:" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  sleep 1
done
grep -q "Batch Gateway is up" "$log" || { echo "FAILED: test-run not up within 180 s" >&2; tail -40 "$log" >&2; exit 1; }
python3 .ci/readme-examples.py "$port" README.md docs/*.md
