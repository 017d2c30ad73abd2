#!/usr/bin/env bash
# The scheduler alone under JMH (enqueue -> batch -> dispatch -> complete, no-op worker): a guard against regressions.
# Usage: bench/jmh.sh [JMH options, e.g. -f 1 -wi 2 -i 3]; JMH_BENCHMARKS=FairShareBenchmark bench/jmh.sh for another class
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
./mvnw -B -q -DskipTests test-compile dependency:build-classpath \
  -Dmdep.includeScope=test -Dmdep.outputFile=target/test-classpath.txt
"$(java25)" -cp "target/test-classes:target/classes:$(cat target/test-classpath.txt)" \
  org.openjdk.jmh.Main "${JMH_BENCHMARKS:-dev.batchgateway.completion.SchedulerBenchmark}" "$@"
