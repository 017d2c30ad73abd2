#!/usr/bin/env bash
# The latency the durable usage ledger adds to each answer (issue 25): batches of 8 rows at a fixed rate through the real
# UsageLedger, JdbcUsageRepository and FileUsageJournal against a local PostgreSQL (embedded unless BENCH_DATABASE_URL
# is set); see DurableUsageLatency. Not part of CI.
#
#   bench/durable-latency.sh            # 1,000 completions/s, 20 s a phase (about 2 minutes)
#   bench/durable-latency.sh 2000 10
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
./mvnw -B -q -Pbench -DskipTests test-compile dependency:build-classpath \
  -Dmdep.includeScope=test -Dmdep.outputFile=target/test-classpath.txt
"$(java25)" -cp "target/test-classes:target/classes:$(cat target/test-classpath.txt)" \
  dev.batchgateway.usage.DurableUsageLatency "${1:-1000}" "${2:-20}"
