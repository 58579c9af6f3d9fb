#!/usr/bin/env bash
# Installs what ctre's tests and demo need, when missing: Deno (npm), containerd, runc,
# busybox-static, and Go with bbolt (to age content in containerd's metadata DB in tests).
# Idempotent; needs root for apt-get.
set -euo pipefail

DENO_VERSION=2.9.6
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v go >/dev/null || missing+=(golang-go)
[ -d /usr/share/gocode/src/go.etcd.io/bbolt ] || missing+=(golang-github-coreos-bbolt-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v deno >/dev/null || ! deno --version | grep -q "^deno ${DENO_VERSION} "; then
  echo "setup: installing deno@${DENO_VERSION} from npm" >&2
  npm install -g "deno@${DENO_VERSION}" >/dev/null 2>&1
fi
# promtool, to check the metrics file with Prometheus' own parser: only the binary, taken out of
# Debian's prometheus package without installing it (no server is set up or started).
PROMTOOL=/opt/ctre-test-tools/promtool
if [ ! -x "$PROMTOOL" ]; then
  echo "setup: extracting promtool from Debian's prometheus package" >&2
  tmp=$(mktemp -d)
  download() { (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); }
  if { download || { apt-get update -qq && download; }; } && dpkg -x "$tmp"/prometheus_*.deb "$tmp/x"; then
    install -D -m 0755 "$tmp/x/usr/bin/promtool" "$PROMTOOL"
  else
    echo "setup: cannot extract promtool into $PROMTOOL; tests/metrics_test.ts fails until it is there" >&2
  fi
  rm -rf "$tmp"
fi
bash "$(dirname "$0")/setup_containerd.sh"
bash "$(dirname "$0")/setup_systemd.sh" >/dev/null  # debootstrap, systemd-nspawn, cached rootfs
bash "$(dirname "$0")/setup_cri.sh"
# The system containerd must not be needed: tests run their own. Debian's package starts one;
# it is left alone.
bash "$(dirname "$0")/setup_docker.sh"
