#!/usr/bin/env bash
# Installs what is missing, then runs every test (unit and end-to-end on a private containerd).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec deno task test "$@"
