#!/usr/bin/env bash
# Install Chromium, in which the insights test opens the report and takes a screenshot
# (tests/test_insights.py). Idempotent: does nothing when chromium is already on the PATH. Debian/Ubuntu,
# as root. Nothing else uses it; it runs headless, as a throw-away process per test.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "Chromium is not installed; run as root: apt-get install -y chromium" >&2
    exit 1
fi
echo "Installing Chromium for the insights report test…" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q chromium >/dev/null; then
    apt-get update -q >/dev/null
    apt-get install -y -q chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || { echo "Installing Chromium failed: no chromium on the PATH." >&2; exit 1; }
