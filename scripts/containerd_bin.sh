#!/usr/bin/env bash
# Prints the bin dir of one containerd version the tests support (daemon, ctr and shim from the
# same package), fetching that Debian package into the cache when missing (scripts/debian_pkg.sh).
#
#   PATH="$(bash scripts/containerd_bin.sh 2.1.9):$PATH" ctr --version
#
# VERSION: 1.6.20 (Debian 12's own package: the system's /usr/bin, installed by setup.sh),
# 1.7.24 (trixie) or 2.1.9 (sid). Default: $CTRE_TEST_CONTAINERD, else 1.6.20.
# To test another version, add its suite and Debian version below (and see CONTRIBUTING.md,
# "Add a containerd version").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-${CTRE_TEST_CONTAINERD:-1.6.20}}
case "$version" in
  1.6.20)
    if ! /usr/bin/containerd --version 2>/dev/null | grep -q ' 1\.6\.20'; then
      echo "containerd_bin.sh: /usr/bin/containerd is not 1.6.20 (run scripts/setup.sh)" >&2
      exit 1
    fi
    echo /usr/bin
    exit 0
    ;;
  1.7.24) suite=trixie spec=containerd=1.7.24~ds1-6+deb13u1 ;;
  2.1.9) suite=sid spec=containerd=2.1.9+ds1-5 ;;
  *)
    echo "containerd_bin.sh: unknown containerd version \"$version\" (1.6.20, 1.7.24 or 2.1.9)" >&2
    exit 2
    ;;
esac
dir=$(bash "$here/debian_pkg.sh" "$suite" "$spec")
echo "$dir/usr/bin"
