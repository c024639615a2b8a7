#!/usr/bin/env bash
# The GPU check: on a bare H100/H200 machine with CUDA and PyTorch 2.11 but no
# Bazel and no network, builds core/ and core/gpu_check.cc against that
# machine's torch with g++, then runs the CUDA parity tests and a short
# benchmark (RESIDENT vs STRONGHOLD vs L2L on a model that fits, and
# STRONGHOLD with a GPU budget far smaller than the model) and prints one
# table. Needs .deps/gpu from deploy/gpu/prepare.sh (carried along).
#
#   ./deploy/gpu/check.sh [--quick]        # well under 8 minutes
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
DEPS="$ROOT/.deps/gpu"
BUILD=${GPU_BUILD_DIR:-/tmp/stronghold-gpu-build}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
[ -d "$DEPS/include/absl" ] || { echo "check: $DEPS missing: run deploy/gpu/prepare.sh where Debian's packages are" >&2; exit 1; }
PYTHON=${PYTHON:-python3}
if [ -n "${TORCH_DIR:-}" ]; then  # a LibTorch tree (include/, lib/) instead of the python package
  TORCH=$TORCH_DIR
else
  TORCH=$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  echo "torch $("$PYTHON" -c 'import torch; print(torch.__version__, torch.version.cuda)') at $TORCH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# CUDA headers and libcudart: the toolkit if present, else pip's nvidia-*
# wheels beside torch, else (headers only) the ones prepare.sh carried.
find_first() {  # find_first NAME DIR...
  local name=$1; shift
  for d in "$@"; do
    [ -d "$d" ] || continue
    local hit
    hit=$(find "$d" -maxdepth 4 -name "$name" 2>/dev/null | awk '{ print length, $0 }' |
          sort -n | head -n 1 | cut -d' ' -f2-)  # the shallowest
    [ -n "$hit" ] && { dirname "$hit"; return 0; }
  done
  return 1
}
SITE=$(dirname "$TORCH")
CUDA_INC=$(find_first cuda_runtime.h "$CUDA_HOME/include" "$SITE/nvidia" "$DEPS/cuda-include") \
  || { echo "check: no cuda_runtime.h found" >&2; exit 1; }
CUDART_DIR=$(find_first 'libcudart.so*' "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$SITE/nvidia") \
  || { echo "check: no libcudart found" >&2; exit 1; }
CUDART=$(cd "$CUDART_DIR" && ls libcudart.so* | sort | head -n 1)
echo "CUDA headers: $CUDA_INC; runtime: $CUDART_DIR/$CUDART"

mkdir -p "$BUILD"
CXXFLAGS=(-std=c++20 -O2 -DNDEBUG -fPIC -D_GLIBCXX_USE_CXX11_ABI=1 -I"$ROOT" -isystem "$DEPS/include"
          -isystem "$TORCH/include" -isystem "$TORCH/include/torch/csrc/api/include"
          -isystem "$CUDA_INC" -Wno-deprecated-declarations)
FP=(-ffp-contract=off -fno-math-errno)
compile() {  # compile SRC [extra flags...]
  local src=$1; shift
  g++ "${CXXFLAGS[@]}" "$@" -c "$src" -o "$BUILD/$(echo "$src" | tr / _).o"
}
export -f compile
export BUILD ROOT
# Every library source of core/ (not the other binaries' mains, not the
# device factories: gpu_check makes its CUDA device directly).
SOURCES=()
for src in core/*.cc core/optim/*.cc; do
  case "$src" in
    core/engine_bench.cc|core/device_factory*.cc|core/optim/adamw_bench.cc) ;;
    *) SOURCES+=("$src") ;;
  esac
done
echo "compiling ${#SOURCES[@]} files on $(nproc) cores ..."
start=$(date +%s)
failed=0
for src in "${SOURCES[@]}"; do
  case "$src" in
    core/optim/adamw_kernel_avx2.cc) flags=("${FP[@]}" -mavx2 -mf16c) ;;
    core/optim/adamw_kernel_avx512.cc) flags=("${FP[@]}" -mavx512f) ;;
    core/optim/*) flags=("${FP[@]}") ;;
    *) flags=() ;;
  esac
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || failed=1; done  # ~1.5 GB each
  compile "$src" "${flags[@]}" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
[ "$failed" -eq 0 ] || { echo "check: compilation failed" >&2; exit 1; }
ABSL=$(cd "$DEPS/lib" && ls libabsl_*.so | sed 's/^lib\(.*\)\.so$/-l\1/' | tr '\n' ' ')
g++ -o "$BUILD/gpu_check" "$BUILD"/*.o -L"$TORCH/lib" -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10 \
  -ltorch -L"$CUDART_DIR" -l:"$CUDART" -L"$DEPS/lib" $ABSL -lglog -lcrypto \
  -pthread -Wl,--no-as-needed -Wl,--allow-shlib-undefined \
  -Wl,-rpath,"$TORCH/lib:$DEPS/lib:$CUDART_DIR"
echo "built in $(( $(date +%s) - start )) s"
OMP_WAIT_POLICY=passive timeout 420 "$BUILD/gpu_check" "$@"
