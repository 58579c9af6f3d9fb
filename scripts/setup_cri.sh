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

bash scripts/debian_pkg.sh trixie golang-github-kubernetes-cri-api-dev >/dev/null
bash scripts/debian_pkg.sh bookworm docker-registry >/dev/null

if ! command -v node >/dev/null; then
  echo "setup_cri: installing nodejs" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 nodejs npm >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 nodejs npm >/dev/null; }
fi

GRPC_JS=1.14.7
PROTO_LOADER=0.8.1
dir="$cache/cri-node"
stamp="$dir/.complete-$GRPC_JS-$PROTO_LOADER"
if [ ! -f "$stamp" ]; then
  echo "setup_cri: installing @grpc/grpc-js@$GRPC_JS @grpc/proto-loader@$PROTO_LOADER" >&2
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"private":true}' >"$dir/package.json"
  npm install --prefix "$dir" --no-audit --no-fund --silent \
    "@grpc/grpc-js@$GRPC_JS" "@grpc/proto-loader@$PROTO_LOADER" >/dev/null
  touch "$stamp"
fi
