#!/usr/bin/env bash
# strongholdctl is a thin client (issue 16): it links the proto, //core/util and
# the checkpoint file format (//core/checkpoint:format) and nothing of the
# daemon: no planner, engine, trainer, model, device, data or optimizer code,
# no storage, no server, no LibTorch or CUDA. A Bazel test cannot run
# `bazel query`, so deploy/test.sh runs this script before `bazel test`.
# Usage: tests/client/thin_client_check.sh   (from anywhere in the workspace)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

TARGET=//client:strongholdctl
deps=$(bazel query --noshow_progress "deps($TARGET)" 2>/dev/null) || {
  echo "thin_client_check: bazel query 'deps($TARGET)' failed" >&2
  bazel query --noshow_progress "deps($TARGET)" >/dev/null
  exit 1
}

# Whole packages that must not appear, and any target of the LibTorch or CUDA
# repositories.
forbidden=$(grep -E '^//(core/(plan|engine|train|model|device|data|optim|tools)|storage|server)([/:]|$)|^@(libtorch|cuda)//' <<<"$deps" || true)
# Of //core, only //core/util and the checkpoint format: the checkpoint writer
# and reader (//core/checkpoint:checkpoint) need the model and the planner.
rules=$(bazel query --noshow_progress "kind(rule, deps($TARGET))" 2>/dev/null)
extra_core=$(grep -E '^//core/' <<<"$rules" |
  grep -vE '^//core/util:|^//core/checkpoint:format$' || true)

if [ -n "$forbidden$extra_core" ]; then
  echo "thin_client_check: FAIL: $TARGET depends on code it must not link:"
  printf '%s\n%s\n' "$forbidden" "$extra_core" | grep -v '^$' | sort -u | sed 's/^/  /'
  echo "(bazel query 'somepath($TARGET, LABEL)' shows the way in)"
  exit 1
fi
echo "thin_client_check: OK: $TARGET links $(grep -cE '^//(core|client|proto)' <<<"$rules") rules of this workspace, none of the daemon's:"
grep -E '^//core/' <<<"$rules" | sort | sed 's/^/  /'
