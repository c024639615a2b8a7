#!/usr/bin/env bash
# Gloo's code comes from libtorch_cpu.so only (issue 17): the c10d
# communicator compiles against Debian's libgloo-dev headers but must never
# link -lgloo or define gloo's symbols itself, or two copies of gloo (of
# different versions) would meet in one process. Builds what links the
# communicator and checks with nm that none of it defines a gloo:: symbol.
# A Bazel test cannot build other targets, so deploy/test.sh runs this script.
# Usage: tests/dist/no_gloo_symbols_check.sh   (from anywhere in the workspace)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

TARGETS=(//core/dist:c10d_communicator //tests/core/dist:c10d_communicator_test)
bazel build --noshow_progress "${TARGETS[@]}" >/dev/null 2>&1 || {
  echo "no_gloo_symbols_check: bazel build ${TARGETS[*]} failed" >&2
  bazel build --noshow_progress "${TARGETS[@]}"
  exit 1
}
BIN=$(bazel info bazel-bin 2>/dev/null)
files=("$BIN"/core/dist/_objs/c10d_communicator/*.o "$BIN"/core/dist/libc10d_communicator.so
       "$BIN"/tests/core/dist/c10d_communicator_test)
for extra in "$BIN"/server/strongholdd "$BIN"/server/strongholdd_cuda; do
  [ -f "$extra" ] && files+=("$extra")  # when built (deploy/test.sh builds //...)
done
failed=0
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "no_gloo_symbols_check: missing $f" >&2; failed=1; continue; }
  defined=$(nm -C --defined-only "$f" 2>/dev/null | grep -E ' gloo::' || true)
  if [ -n "$defined" ]; then
    echo "no_gloo_symbols_check: FAIL: ${f#"$BIN"/} defines gloo symbols (link -lgloo or an inline copy?):"
    head -n 5 <<<"$defined" | sed 's/^/  /'
    failed=1
  fi
done
# Nothing may ask the linker for libgloo (a linkopt is a quoted string).
if grep -rn --include=BUILD --include='*.BUILD' --include='*.bzl' -e '"-lgloo' \
    core server storage client tests third_party 2>/dev/null; then
  echo "no_gloo_symbols_check: FAIL: a BUILD file links -lgloo" >&2
  failed=1
fi
[ "$failed" -eq 0 ] || exit 1
echo "no_gloo_symbols_check: OK: ${#files[@]} files define no gloo:: symbol"
