#!/usr/bin/env bash
# Issue 13: Debian's nginx, the front of `cds-service serve`, for tests/integration/test_slow_clients.py and
# every test that starts the production server.
set -euo pipefail
exec "$(dirname "$0")/../../scripts/install-nginx"
