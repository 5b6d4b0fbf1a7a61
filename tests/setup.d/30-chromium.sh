#!/usr/bin/env bash
# Headless Chromium (Debian's) and its driver for the browser tests (tests/browser/, issue #7); Playwright
# (pip, test extra) drives /usr/bin/chromium, so `playwright install` is never needed.
# Idempotent and quiet: does nothing when /usr/bin/chromium is already there; shows apt's output on failure.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Another setup script may hold the dpkg lock: wait for it rather than fail.
if ! { apt-get -o DPkg::Lock::Timeout=600 update -qq &&
       apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
         chromium chromium-driver fonts-dejavu-core; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
