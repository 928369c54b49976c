#!/usr/bin/env bash
# Build, or reuse, a Debian bookworm arm64 userland that stands in for a Raspberry Pi.
#
# Binaries in it run on this x86-64 host through qemu-user (binfmt_misc); tests/aarch64_fixture.py puts a real
# sshd on loopback in front of it, and tools/aarch64/enter.sh runs each SSH session inside it.
#
# Usage: build_rootfs.sh [--rebuild | --unmount]
#   (no option)  reuse the unpacked rootfs, else unpack the cached tarball, else debootstrap and cache it
#   --rebuild    throw away the rootfs and the tarball, then build both again
#   --unmount    unmount what enter.sh mounted inside the rootfs (proc, cpuinfo) and exit
#
# Environment:
#   EDGE_SDK_CACHE         cache folder (default: $HOME/.cache/edge-sdk)
#   EDGE_SDK_AARCH64_ROOT  where the rootfs is unpacked (default: $EDGE_SDK_CACHE/aarch64-rootfs)
#
# Prints the rootfs path as the last line of stdout; everything else goes to stderr.
# Exit status 77 means this machine cannot build the stand-in (not root, no binfmt_misc, no package mirror),
# which the test fixture turns into a skip; any other non-zero status is a real failure.
set -euo pipefail

readonly EXIT_CANNOT_BUILD=77
readonly SUITE=bookworm
readonly DEVICE_PYTHON_VERSION=3.11
readonly DEB_PACKAGES=python3,python3-venv,ca-certificates,rsync,openssh-sftp-server
readonly HOST_PACKAGES=(qemu-user-static binfmt-support debootstrap openssh-server openssh-client rsync)
readonly WHEELS=(numpy ai-edge-litert==2.3.0 onnxruntime==1.32.0)
# Where the on-device runner's wheels live inside the rootfs; enter.sh puts it on PYTHONPATH.
readonly SITE_IN_ROOT=/opt/edge-sdk/site

readonly CACHE_DIR=${EDGE_SDK_CACHE:-$HOME/.cache/edge-sdk}
ROOT=$(realpath -m "${EDGE_SDK_AARCH64_ROOT:-$CACHE_DIR/aarch64-rootfs}")
readonly ROOT
readonly TARBALL=$CACHE_DIR/aarch64-rootfs.tar.gz
# A rootfs or tarball whose recipe differs from this one (other packages, other wheels) is rebuilt.
readonly RECIPE="format=1 suite=$SUITE python=$DEVICE_PYTHON_VERSION debs=$DEB_PACKAGES wheels=${WHEELS[*]}"
readonly RECIPE_IN_ROOT=opt/edge-sdk/rootfs-recipe.txt

log() { printf 'build_rootfs: %s\n' "$*" >&2; }
cannot_build() { log "cannot build the aarch64 stand-in here: $*"; exit "$EXIT_CANNOT_BUILD"; }
die() { log "error: $*"; exit 1; }

# Every command run inside the rootfs gets a clean environment, so the host's PIP_*, PYTHON* and locale
# settings never leak into the "device".
in_root() { local dir=$1; shift; env -i PATH=/usr/bin:/bin LANG=C.UTF-8 /usr/sbin/chroot "$dir" "$@"; }

has_recipe() { [[ -f "$1/$RECIPE_IN_ROOT" && "$(cat "$1/$RECIPE_IN_ROOT")" == "$RECIPE" ]]; }

# Unmount everything below a folder, deepest first (enter.sh mounts proc and a cpuinfo file inside the rootfs),
# so that neither tar nor rm -rf ever walks into the host's /proc.
unmount_below() {
    local dir target
    dir=$(realpath -m "$1")
    findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1' | sort -r | while read -r target; do
        log "unmounting $target"
        umount "$target" || umount -l "$target"
    done
}

remove_tree() {
    [[ -e "$1" ]] || return 0
    unmount_below "$1"
    rm -rf --one-file-system "$1"
}

ensure_host_packages() {
    local missing=() package
    for package in "${HOST_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing host packages: ${missing[*]}"
    apt-get update >&2 || cannot_build "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
        || cannot_build "apt-get install ${missing[*]} failed"
}

ensure_binfmt() {
    local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
    if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || cannot_build "cannot mount binfmt_misc"
    fi
    if [[ ! -e "$entry" ]] || ! grep -qx enabled "$entry"; then
        update-binfmts --enable qemu-aarch64 >&2 || cannot_build "update-binfmts --enable qemu-aarch64 failed"
    fi
    grep -qx enabled "$entry" || cannot_build "binfmt entry $entry is not enabled"
    # Without the F flag the kernel looks for the interpreter inside the chroot, where it does not exist.
    grep -q '^flags:.*F' "$entry" || cannot_build "binfmt entry $entry lacks the F (fix binary) flag"
}

debian_mirror() {
    local deb822=/etc/apt/sources.list.d/debian.sources one_line=/etc/apt/sources.list mirror=""
    if [[ -f "$deb822" ]]; then
        mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$deb822")
    fi
    if [[ -z "$mirror" && -f "$one_line" ]]; then
        # "deb [options] URI suite components": the URI is the first field with a scheme.
        mirror=$(awk '$1 == "deb" && !/security/ {
            for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$one_line")
    fi
    [[ -n "$mirror" ]] || cannot_build "no Debian mirror found in $deb822 or $one_line"
    printf '%s\n' "$mirror"
}

install_wheels() {
    local dir=$1 version platforms=()
    # pip matches --platform tags exactly, and wheels are tagged with the glibc they were built against
    # (ai-edge-litert 2.3.0 is manylinux_2_27, onnxruntime 1.32.0 manylinux_2_28), so list every glibc
    # from manylinux2014 up to bookworm's 2.36.
    platforms+=(--platform manylinux2014_aarch64)
    for version in $(seq 17 36); do platforms+=(--platform "manylinux_2_${version}_aarch64"); done
    log "installing ${WHEELS[*]} (aarch64, cp311 wheels) into $SITE_IN_ROOT"
    python3 -m pip install --target "$dir$SITE_IN_ROOT" --only-binary=:all: "${platforms[@]}" \
        --python-version "$DEVICE_PYTHON_VERSION" --implementation cp --abi cp311 --abi abi3 --abi none \
        --no-warn-script-location "${WHEELS[@]}" >&2
}

build_fresh() {
    local partial=$1 mirror device_python
    mirror=$(debian_mirror)
    wget -q --spider "$mirror/dists/$SUITE/Release" || cannot_build "Debian mirror $mirror is unreachable"
    log "debootstrap $SUITE arm64 from $mirror into $partial (takes a few minutes)"
    debootstrap --arch=arm64 --variant=minbase --include="$DEB_PACKAGES" "$SUITE" "$partial" "$mirror" >&2 \
        || die "debootstrap failed; see $partial/debootstrap/debootstrap.log"
    device_python=$(in_root "$partial" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    [[ "$device_python" == "$DEVICE_PYTHON_VERSION" ]] \
        || die "the rootfs has Python $device_python, but the wheels are picked for $DEVICE_PYTHON_VERSION"
    install_wheels "$partial"
    in_root "$partial" apt-get clean
    mkdir -p "$(dirname "$partial/$RECIPE_IN_ROOT")"
    printf '%s\n' "$RECIPE" >"$partial/$RECIPE_IN_ROOT"
    log "caching the rootfs as $TARBALL"
    unmount_below "$partial"
    tar --numeric-owner --one-file-system -C "$partial" -czf "$TARBALL.partial" .
    mv -f "$TARBALL.partial" "$TARBALL"
}

unpack_cached() {
    local partial=$1
    log "unpacking $TARBALL into $partial"
    mkdir -p "$partial"
    tar --numeric-owner -C "$partial" -xzf "$TARBALL"
}

main() {
    local mode=${1:-build}
    case "$mode" in
        build | --rebuild | --unmount) ;;
        *) die "unknown option '$mode'; usage: build_rootfs.sh [--rebuild | --unmount]" ;;
    esac
    [[ $(id -u) -eq 0 ]] || cannot_build "must run as root (debootstrap, chroot and mount need it)"
    if [[ "$mode" == --unmount ]]; then
        unmount_below "$ROOT"
        return 0
    fi
    ensure_host_packages
    ensure_binfmt
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/aarch64-rootfs.lock"
    flock 9  # two test sessions building at once would otherwise debootstrap into the same folder

    if [[ "$mode" == --rebuild ]]; then
        remove_tree "$ROOT"
        rm -f "$TARBALL"
    fi
    if has_recipe "$ROOT"; then
        log "reusing $ROOT"
    else
        local partial=$ROOT.partial
        remove_tree "$ROOT"
        remove_tree "$partial"
        if [[ -f "$TARBALL" ]]; then
            unpack_cached "$partial"
            if ! has_recipe "$partial"; then
                log "the cached tarball was built from another recipe; rebuilding"
                remove_tree "$partial"
                rm -f "$TARBALL"
            fi
        fi
        [[ -d "$partial" ]] || build_fresh "$partial"
        mv "$partial" "$ROOT"
    fi
    in_root "$ROOT" /bin/true || die "cannot run arm64 binaries in $ROOT (is qemu-aarch64 binfmt working?)"
    printf '%s\n' "$ROOT"
}

# On one line so bash has read the whole script before it runs: editing it mid-build cannot derail the build.
main "$@"; exit
