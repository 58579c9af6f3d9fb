#!/usr/bin/env bash
# Installs what is missing, then shows ctre on a throwaway containerd with sample images.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec deno task demo "$@"
