#!/usr/bin/env bash
# Installs what the demo needs and only that (scripts/setup_demo.sh: Deno, containerd, runc,
# busybox-static), then shows ctre on a throwaway containerd with sample images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_demo.sh
exec deno task demo "$@"
