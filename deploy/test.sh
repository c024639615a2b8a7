#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test.
# Usage: ./deploy/test.sh [extra bazel test flags]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

./deploy/install-deps.sh
echo "==> bazel build //..."
bazel build //...
echo "==> tests/client/thin_client_check.sh"
./tests/client/thin_client_check.sh
echo "==> bazel test //..."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
bazel test //... --test_summary=short "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -cE '^//.* PASSED( |$)' "$log" || true)
failed=$(grep -cE '^//.* (FAILED|TIMEOUT|NO STATUS|INCOMPLETE)( |$)' "$log" || true)
echo
echo "tests: $passed passed, $failed failed"
exit "$rc"
