#!/usr/bin/env bash
# Test-only: the JSON Schema validator the tests check ctre's --json documents with (npm ajv,
# its draft 2020-12 build, and ajv-formats), in /opt/ctre-test-tools/schema-node; nothing ships.
# Idempotent. CTRE_TEST_CACHE overrides the cache dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/quiet.sh
. "$here/quiet.sh"
cache=${CTRE_TEST_CACHE:-/opt/ctre-test-tools}
AJV=8.20.0
AJV_FORMATS=3.0.1
npm_into "$cache/schema-node" "ajv@$AJV" "ajv-formats@$AJV_FORMATS"
