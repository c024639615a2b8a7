#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test, then the
# fuzzers (tests/fuzz/build_and_run.sh; FUZZ_SECONDS per target, default 30)
# and the formatting check (deploy/format.sh --check).
# Usage: ./deploy/test.sh [extra bazel test flags]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

./deploy/install-deps.sh
echo "==> bazel build //... //tests/gpu:parity_test //tests/gpu:data_parallel_gpu_test"
# The GPU parity test is tagged manual (no GPU here): no wildcard reaches
# it, so it is named to be compiled and linked all the same.
bazel build //... //tests/gpu:parity_test //tests/gpu:data_parallel_gpu_test
echo "==> tests/client/thin_client_check.sh"
./tests/client/thin_client_check.sh
echo "==> tests/dist/no_gloo_symbols_check.sh"
./tests/dist/no_gloo_symbols_check.sh
echo "==> bazel test //..."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
bazel test //... --test_summary=short "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# The untrusted parsers under libFuzzer, ASan and UBSan (docs/fuzzing.md):
# one line per target, "fuzz/<target> PASSED|FAILED", counted below.
echo "==> fuzz: tests/fuzz/build_and_run.sh (${FUZZ_SECONDS:-30} s per target)"
tests/fuzz/build_and_run.sh 2>&1 | tee -a "$log"
other_rc=${PIPESTATUS[0]}
echo "==> deploy/format.sh --check"
if ./deploy/format.sh --check; then
  echo "format/clang-format PASSED" | tee -a "$log"
else
  other_rc=1
  echo "format/clang-format FAILED" | tee -a "$log"
fi
set -e
passed=$(grep -cE '^(//.*|(fuzz|format)/[a-z_-]+) PASSED( |$)' "$log" || true)
failed=$(grep -cE '^(//.* (FAILED|TIMEOUT|NO STATUS|INCOMPLETE)|(fuzz|format)/[a-z_-]+ FAILED)( |$)' "$log" || true)
echo
echo "tests: $passed passed, $failed failed"
[ "$rc" -ne 0 ] || rc=$other_rc
exit "$rc"
