#!/usr/bin/env bash
# System packages the test suite needs (run as root on CI and developer machines).
# Idempotent: installs only what is missing.
set -euo pipefail

# Install those of the given Debian packages that are not installed yet (without recommends).
install_missing() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}

# Debian's chromium: the report's browser test (tests/report/test_browser.py) renders report.html headless.
if [ ! -x /usr/bin/chromium ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

# ssh transport tests (marker ssh) and the aarch64 device stand-in (marker aarch64, tests/aarch64_fixture.py):
# a real sshd/ssh/scp, qemu-user for arm64 binaries, debootstrap for the rootfs. tools/aarch64/build_rootfs.sh
# installs the same list when it builds; installing here too lets the ssh-only tests run without a rootfs.
install_missing openssh-server openssh-client qemu-user-static binfmt-support debootstrap rsync

# Real-model tests (tests/real): espeak-ng synthesises the speech silero-vad is measured on; DejaVu renders the text
# lines the PP-OCR models read.
install_missing espeak-ng fonts-dejavu-core
