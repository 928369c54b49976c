#!/usr/bin/env bash
# System packages the test suite needs (run as root on CI and developer machines).
# Idempotent: installs only what is missing.
set -euo pipefail

# Debian's chromium: the report's browser test (tests/report/test_browser.py) renders report.html headless.
if [ ! -x /usr/bin/chromium ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
