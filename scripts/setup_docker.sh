#!/usr/bin/env bash
# Test-only: Debian trixie's dockerd and docker CLI (26.1.5, the containerd image store), taken
# out of their packages with scripts/debian_pkg.sh into /opt/ctre-test-tools (the system's apt
# sources and packages are untouched; nothing of it ships). tests/support/dockerd.ts runs them
# against a private containerd 1.7+ (Docker 26 refuses 1.6).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DOCKER_VERSION=26.1.5+dfsg1-9+deb13u1+b1
bash "$here/debian_pkg.sh" trixie "docker.io=$DOCKER_VERSION" >/dev/null
bash "$here/debian_pkg.sh" trixie "docker-cli=$DOCKER_VERSION" >/dev/null
