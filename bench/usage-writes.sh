#!/usr/bin/env bash
# Usage rows per second one gateway writes to PostgreSQL when batches finish back to back (README, Performance).
#   bench/usage-writes.sh                      50,000 rows, 5 rounds, embedded PostgreSQL 17
#   bench/usage-writes.sh -Dbench.rows=200000 -Dbench.rounds=3
#   BENCH_DATABASE_URL=jdbc:postgresql://localhost:5432/postgres bench/usage-writes.sh   your own PostgreSQL
# Extra arguments go to Maven (e.g. -o to stay offline). A measurement, not a test: nothing is asserted about speed.
set -euo pipefail
cd "$(dirname "$0")/.."
./mvnw -B -q -Pbench "$@" test-compile exec:exec
