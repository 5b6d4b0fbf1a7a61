#!/usr/bin/env bash
# Issue #3: install the test FHIR server (Medplum's FHIR engine, pinned by package-lock.json) used by
# tests/integration/test_fhir_server_*.py. Idempotent and quiet. Needs the machine's Node.js (>= 20) and npm.
set -euo pipefail
cd "$(dirname "$0")/../fhir_server"
if ! command -v npm >/dev/null 2>&1; then
  echo "20-fhir-server.sh: npm not found; the FHIR-server integration tests will be skipped" >&2
  exit 0
fi
# Reinstall only when package-lock.json changed since the last install.
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" > node_modules/.lock-sha256
fi
