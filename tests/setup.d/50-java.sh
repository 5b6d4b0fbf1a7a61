#!/usr/bin/env bash
# A Java 17 runtime for PySpark in local mode (tests/test_population_spark.py). PySpark itself
# comes from pip (the `population` extra). Idempotent and quiet; shows apt's output on failure.
set -euo pipefail
if command -v java >/dev/null 2>&1 && java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Another setup script may hold the dpkg lock: wait for it rather than fail.
if ! { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
       apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends openjdk-17-jre-headless; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
