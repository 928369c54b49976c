#!/usr/bin/env bash
# Run one command inside the aarch64 stand-in rootfs (made by build_rootfs.sh), as on a Raspberry Pi.
#
# sshd runs this for every session of the test key (authorized_keys: command="enter.sh ROOT"), so the command
# the client asked for arrives in $SSH_ORIGINAL_COMMAND; scp/sftp arrive as /usr/lib/openssh/sftp-server and
# rsync as "rsync --server ...", both of which exist inside the rootfs. Without $SSH_ORIGINAL_COMMAND the
# arguments after ROOT are run (handy by hand), and without those a non-interactive /bin/sh reads stdin.
#
# Usage: enter.sh ROOT [COMMAND...]
#
# The command runs under `env -i` with PATH, HOME=/tmp (also the working folder), LANG=C.UTF-8,
# QEMU_CPU=cortex-a72 (see below) and a PYTHONPATH of, in order:
#   - $EDGE_SDK_AARCH64_PYTHONPATH (colon-separated, paths as seen inside the rootfs; sshd passes it with
#     SetEnv, see tests/aarch64_fixture.py),
#   - the lines of ROOT/opt/edge-sdk/extra-pythonpath, if that file exists (same meaning),
#   - /opt/edge-sdk/site, where build_rootfs.sh installed numpy, ai-edge-litert and onnxruntime.
set -euo pipefail

if [[ $# -lt 1 || ! -d "$1" ]]; then
    echo "usage: enter.sh ROOT [COMMAND...] (ROOT: a rootfs made by tools/aarch64/build_rootfs.sh)" >&2
    exit 2
fi
ROOT=$(realpath "$1")
shift
CPUINFO=$(dirname "$(realpath "${BASH_SOURCE[0]}")")/cpuinfo-arm64.txt

# Mount proc inside the rootfs and lay an ARM cpuinfo over it: onnxruntime >= 1.28 segfaults on import under
# qemu-user when /proc/cpuinfo describes the x86 host (seen with the host's sysfs mounted). Done once, under a
# lock, since sessions run in parallel.
ensure_mounts() {
    (
        flock 9
        if ! mountpoint -q "$ROOT/proc"; then
            mount -t proc proc "$ROOT/proc"
        fi
        if ! mountpoint -q "$ROOT/proc/cpuinfo"; then
            mount --bind "$CPUINFO" "$ROOT/proc/cpuinfo"
        fi
        # sysfs stays unmounted (the host's sysfs next to the x86 cpuinfo is what crashes onnxruntime), but
        # onnxruntime's cpuinfo library prints errors unless it finds the CPU lists, and it pins one pool thread
        # per listed CPU: list the CPUs this host really has online, or pinning to a missing one logs errors.
        local cpu_dir=$ROOT/sys/devices/system/cpu list
        mkdir -p "$cpu_dir"
        for list in possible present online; do
            if ! cmp -s /sys/devices/system/cpu/online "$cpu_dir/$list"; then
                cp /sys/devices/system/cpu/online "$cpu_dir/$list"
            fi
        done
    ) 9>"$ROOT/run/edge-sdk-mount.lock"
}

python_path() {
    local entries=() line
    [[ -n "${EDGE_SDK_AARCH64_PYTHONPATH:-}" ]] && entries+=("$EDGE_SDK_AARCH64_PYTHONPATH")
    if [[ -f "$ROOT/opt/edge-sdk/extra-pythonpath" ]]; then
        while IFS= read -r line; do
            [[ -n "$line" && "$line" != \#* ]] && entries+=("$line")
        done <"$ROOT/opt/edge-sdk/extra-pythonpath"
    fi
    entries+=(/opt/edge-sdk/site)
    local IFS=:
    printf '%s' "${entries[*]}"
}

ensure_mounts

# The inner shell changes to $HOME first, so relative paths from scp, sftp and rsync land in /tmp as they
# would in a home folder. A command line from ssh is evaluated by the shell, as sshd would; arguments given
# here are passed on as they are, with no shell parsing.
if [[ -n "${SSH_ORIGINAL_COMMAND:-}" ]]; then
    set -- /bin/sh -c 'cd "$HOME" && eval "$1"' enter.sh "$SSH_ORIGINAL_COMMAND"
elif [[ $# -gt 0 ]]; then
    set -- /bin/sh -c 'cd "$HOME" && exec "$@"' enter.sh "$@"
else
    set -- /bin/sh -c 'cd "$HOME" && exec /bin/sh'
fi

# QEMU_CPU makes qemu-user emulate the Raspberry Pi 4's Cortex-A72 (the CPU cpuinfo-arm64.txt describes) rather
# than its default "max" CPU. On "max", SME is on, and LiteRT's XNNPACK int8 kernels return wrong numbers under
# bookworm's qemu 7.2 (hello_world_int8.tflite: every other output 127); with sme=off, or as a Cortex-A72, they
# match the host bit for bit. Programs on the device can see this variable; a real Pi has no such thing.
exec env -i \
    QEMU_CPU=cortex-a72 \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    HOME=/tmp \
    LANG=C.UTF-8 \
    PYTHONPATH="$(python_path)" \
    /usr/sbin/chroot "$ROOT" "$@"
