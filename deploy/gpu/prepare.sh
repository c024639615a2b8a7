#!/usr/bin/env bash
# Packs what deploy/gpu/check.sh needs besides CUDA and PyTorch into
# .deps/gpu (git-ignored), to be carried to a GPU machine that has no
# network: Abseil, glog/gflags/libunwind, liburing and OpenSSL's libcrypto headers and
# shared libraries from this Debian 12 machine, GoogleTest's headers and
# static libraries (for tests/gpu/parity_test; about 1.5 MiB), the CUDA runtime
# headers and the fallback binaries (46 MiB in all on 2026-12-06), and, where
# PyPI can be reached, the DeepSpeed ZeRO-Offload peer's wheels in
# .deps/gpu/wheels (about 7-9 MiB; see below). Everything carried (the
# working tree too, about 2 MiB) must stay under 64 MiB.
#
#   deploy/gpu/prepare.sh            # needs network for the peer's wheels only
#   NO_PEER=1 deploy/gpu/prepare.sh  # without them
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="$ROOT/.deps/gpu"
LIB=/usr/lib/x86_64-linux-gnu
rm -rf "$OUT"
mkdir -p "$OUT/include" "$OUT/lib"
for d in absl glog gflags openssl gtest gloo; do
  [ -d "/usr/include/$d" ] || { echo "prepare: /usr/include/$d missing (run deploy/install-deps.sh)" >&2; exit 1; }
  cp -r "/usr/include/$d" "$OUT/include/"
done
# CUDA runtime headers, for a GPU machine whose CUDA came only with pip's
# nvidia-* wheels (check.sh prefers the machine's own headers).
cp -r /usr/local/cuda/include "$OUT/cuda-include"
# liburing: the NVMe tier's io_uring backend (storage/), linked into every
# binary that has the trainer.
[ -f /usr/include/liburing.h ] || { echo "prepare: /usr/include/liburing.h missing (run deploy/install-deps.sh)" >&2; exit 1; }
cp -r /usr/include/liburing.h /usr/include/liburing "$OUT/include/"
cp -P "$LIB"/libabsl_*.so* "$LIB"/libglog.so* "$LIB"/libgflags.so* "$LIB"/libunwind.so.8* \
  "$LIB"/libcrypto.so* "$LIB"/liburing.so* "$OUT/lib/"
# GoogleTest as Debian builds it (libgtest-dev: static, position-independent),
# linked into the parity test only.
cp "$LIB"/libgtest.a "$LIB"/libgtest_main.a "$OUT/lib/"

# The peer (deploy/gpu/zero_offload_peer.py, run by check.sh): DeepSpeed as a
# pure-Python wheel built here from its sdist with DS_BUILD_OPS=0 (no torch
# needed; cpu_adam is JIT-built on the GPU machine with its nvcc, ninja and
# torch), plus the dependencies the GPU image lacks, as binary wheels for its
# CPython (3.12 as seen there; KINDS.md) and for this machine's (to check the
# install here). The image already has torch, numpy, tqdm, ninja, psutil,
# msgpack, packaging, py-cpuinfo, einops and nvidia-ml-py; their wheels come
# along anyway (small) and check.sh installs one only where the import fails.
DS_VERSION=${DS_VERSION:-0.19.8}
PEER_PYTHONS=${PEER_PYTHONS:-"3.12 $(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"}
peer_wheels() {
  local w="$OUT/wheels" tmp
  tmp=$(mktemp -d)
  mkdir -p "$w"
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q --upgrade pip wheel setuptools
  DS_BUILD_OPS=0 "$tmp/venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$w" \
    "deepspeed==$DS_VERSION"
  local v
  for v in $(echo "$PEER_PYTHONS" | tr ' ' '\n' | sort -u); do
    "$tmp/venv/bin/pip" download -q --only-binary=:all: --python-version "$v" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$w" \
      pydantic hjson ninja py-cpuinfo einops nvidia-ml-py msgpack psutil packaging
  done
  rm -rf "$tmp"
}
if [ -z "${NO_PEER:-}" ]; then
  peer_wheels || { echo "prepare: the DeepSpeed peer's wheels could not be prepared (network?);" \
                        "check.sh will report 'peer: not run'" >&2; rm -rf "$OUT/wheels"; }
fi
# Fallback binaries (parity_test, gpu_bench, adamw_bench), built here by
# check.sh against the LibTorch wheel of .deps/libtorch (the GPU machine's
# torch version), for a GPU machine that cannot compile.
if [ -z "${NO_PREBUILT:-}" ] && [ -f "$ROOT/.deps/libtorch/lib/libtorch_cuda.so" ]; then
  tmp=$(mktemp -d)
  if BUILD_ONLY=1 PEER=0 TORCH_DIR="$ROOT/.deps/libtorch" GPU_BUILD_DIR="$tmp" \
       "$ROOT/deploy/gpu/check.sh" > "$tmp/build.log" 2>&1; then
    mkdir -p "$OUT/bin" && cp "$tmp/parity_test" "$tmp/gpu_bench" "$tmp/adamw_bench" "$OUT/bin/"
  else
    echo "prepare: the fallback binaries did not build (tail of $tmp/build.log):" >&2
    tail -n 5 "$tmp/build.log" >&2
  fi
  rm -rf "$tmp"
fi
echo "prepared $OUT ($(du -sh "$OUT" | cut -f1)); carry it with the working tree"
