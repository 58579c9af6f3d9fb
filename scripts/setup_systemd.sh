#!/usr/bin/env bash
# For tests/systemd_test.ts (the shipped units booted under a real systemd): installs debootstrap
# and systemd-nspawn, and caches a Debian bookworm rootfs with systemd, containerd and
# node_exporter (to read ctre's metrics as an operator's would) as a directory under
# /opt/ctre-test-tools (debootstrap takes about 80 s, once). The test never writes to it: each
# machine is an overlay on it. Prints the directory's path. Idempotent; needs root. Installing
# systemd-container upgrades the host's systemd packages to the same version, harmless where
# systemd is not PID 1.
set -euo pipefail
# shellcheck source=scripts/quiet.sh
. "$(dirname "$0")/quiet.sh"

# The file name changes with the package list, so a changed list makes a new rootfs.
PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,ca-certificates,prometheus-node-exporter
ROOTFS=/opt/ctre-test-tools/nspawn/bookworm-$(echo "$PACKAGES" | md5sum | cut -c1-8)
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup_systemd: installing ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi
if [ ! -d "$ROOTFS" ]; then
  echo "setup_systemd: debootstrap bookworm rootfs (about 80 s) into $ROOTFS" >&2
  mkdir -p "$(dirname "$ROOTFS")"
  tmp=$(mktemp -d /opt/ctre-test-tools/nspawn/rootfs.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  debootstrap --variant=minbase \
    --include="$PACKAGES" \
    bookworm "$tmp/root" http://deb.debian.org/debian >"$tmp/log" 2>&1 || {
    tail -20 "$tmp/log" >&2
    exit 1
  }
  apt_cache="$tmp/root/var/cache/apt/archives"
  find "$apt_cache" -name '*.deb' -delete 2>/dev/null || true
  mv "$tmp/root" "$ROOTFS"
fi
echo "$ROOTFS"
