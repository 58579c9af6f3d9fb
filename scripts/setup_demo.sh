#!/usr/bin/env bash
# Installs what the demo needs, when missing, and nothing else: Deno (from npm), containerd, runc
# and busybox-static (from Debian). The test toolchain is scripts/setup.sh's (it runs this first).
# Quiet when all goes well; when a step really fails, one line says what and what to do.
# Idempotent; needs root for apt-get.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/quiet.sh
. "$here/quiet.sh"

DENO_VERSION=2.9.6
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if ! command -v deno >/dev/null || ! deno --version | grep -q "^deno ${DENO_VERSION} "; then
  command -v npm >/dev/null || missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian" >&2
  apt_install "${missing[@]}"
fi
if ! command -v deno >/dev/null || ! deno --version | grep -q "^deno ${DENO_VERSION} "; then
  echo "setup: installing deno@${DENO_VERSION} from npm" >&2
  quietly "npm could not install deno@${DENO_VERSION}; check access to registry.npmjs.org" \
    npm install -g --no-audit --no-fund "deno@${DENO_VERSION}"
fi
