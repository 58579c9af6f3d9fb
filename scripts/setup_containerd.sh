#!/usr/bin/env bash
# Fetches the other containerd versions the tests run on (trixie 1.7.24, sid 2.1.9) into
# /opt/ctre-test-tools when missing, without installing them (scripts/containerd_bin.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for v in 1.7.24 2.1.9; do
  bash "$here/containerd_bin.sh" "$v" >/dev/null
done
