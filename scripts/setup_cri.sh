#!/usr/bin/env bash
# Test-only tools for the CRI end-to-end tests (tests/support/cri.ts), cached under
# /opt/ctre-test-tools, nothing installed system-wide except Node.js when it is missing:
# - the CRI proto (runtime.v1 api.proto) from Debian trixie's golang-github-kubernetes-cri-api-dev,
# - a registry binary from Debian bookworm's docker-registry (extracted, never started as a
#   service),
# - npm @grpc/grpc-js and @grpc/proto-loader in /opt/ctre-test-tools/cri-node (the gRPC client
#   that tests/support/cri_client.cjs runs under Node).
# Idempotent; needs root. CTRE_TEST_CACHE overrides the cache dir.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${CTRE_TEST_CACHE:-/opt/ctre-test-tools}
# shellcheck source=scripts/quiet.sh
. scripts/quiet.sh

bash scripts/debian_pkg.sh trixie golang-github-kubernetes-cri-api-dev >/dev/null
bash scripts/debian_pkg.sh bookworm docker-registry >/dev/null

if ! command -v node >/dev/null; then
  echo "setup_cri: installing nodejs" >&2
  apt_install nodejs npm
fi

GRPC_JS=1.14.7
PROTO_LOADER=0.8.1
npm_into "$cache/cri-node" "@grpc/grpc-js@$GRPC_JS" "@grpc/proto-loader@$PROTO_LOADER"
