#!/usr/bin/env bash
# Issue #8: Debian's PostgreSQL and Redis servers for tests/integration/test_scale_out.py. The tests
# start their own instances on free ports under a temporary directory (no system service is used).
# Idempotent and quiet: installs only what is missing.
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Another setup script may hold the dpkg lock: wait for it rather than fail.
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# A package may start a system instance on its default port as it installs; the tests never use it.
# Stop only what this script just installed.
if command -v service >/dev/null; then
  for pkg in "${missing[@]}"; do
    service "$pkg" stop >/dev/null 2>&1 || true
  done
fi
