#!/usr/bin/env bash
# Installs what ctre's tests need, when missing: the demo's part first (scripts/setup_demo.sh:
# Deno, containerd, runc, busybox-static), then the test toolchain: promtool, the other
# containerd versions, debootstrap and a cached rootfs for the systemd test, the CRI proto, a
# registry binary and a gRPC client, Docker, zsh and fish (completion tests), groff and man-db
# (man page test), and the JSON Schema validator (ajv). Quiet when all goes well; a real failure
# prints one line saying what and what to do. Idempotent; needs root for apt-get.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/quiet.sh
. "$here/quiet.sh"

bash "$here/setup_demo.sh"
missing=()
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
command -v groff >/dev/null || missing+=(groff)
command -v man >/dev/null || missing+=(man-db)
command -v python3 >/dev/null || missing+=(python3) # tests/support/pty.ts
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian (tests only)" >&2
  apt_install "${missing[@]}"
fi
# promtool, to check the metrics file with Prometheus' own parser: only the binary, taken out of
# Debian's prometheus package without installing it (no server is set up or started).
PROMTOOL=/opt/ctre-test-tools/promtool
if [ ! -x "$PROMTOOL" ]; then
  echo "setup: extracting promtool from Debian's prometheus package" >&2
  dir=$(bash "$here/debian_pkg.sh" bookworm prometheus)
  install -D -m 0755 "$dir/usr/bin/promtool" "$PROMTOOL"
fi
bash "$here/setup_containerd.sh"
bash "$here/setup_systemd.sh" >/dev/null # debootstrap, systemd-nspawn, cached rootfs
bash "$here/setup_cri.sh"
bash "$here/setup_docker.sh"
bash "$here/setup_schema.sh"
