#!/usr/bin/env bash
# The GPU check: on a bare H100/H200 machine with CUDA and PyTorch 2.11 but no
# Bazel and no network, builds core/, storage/, the GPU parity test
# (tests/gpu/parity_test.cc, with the carried GoogleTest) and the benchmark
# (core/tools/gpu_bench.cc) against that machine's torch with g++, then runs
# the parity test (the engine on the GPU against the CPU, fp32, bf16, fp16;
# and data parallelism: NCCL on one rank, 2 ranks on this GPU through a
# test-only staged path, tests/gpu/data_parallel_gpu_test.cc), then gpu_bench: the seed's cases, short, under a GPU budget that emulates a
# 32 GB card (the planner's largest RESIDENT/STRONGHOLD/L2L models; RESIDENT
# all on the GPU, RESIDENT in the engine, STRONGHOLD with the automatic
# window, with the automatic options the daemon would choose and with
# hand-picked ones, a window sweep, L2L and a small budget, all on the
# largest RESIDENT model). gpu_bench first measures this GPU's hardware
# profile and prints every row's predicted step (on it and on the card's
# built-in profile) before the first row runs, and at the end the measured
# rows against those predictions and the automatic options against the best
# hand-picked row (core/tools/gpu_rows.h). And then,
# if .deps/gpu/wheels is there, the DeepSpeed ZeRO-Offload peer
# (deploy/gpu/zero_offload_peer.py) on the same model and GPU, in fp32 and,
# time permitting, in bf16, and last,
# time permitting, the fused CPU AdamW against DeepSpeedCPUAdam on this
# machine's cores. One table; `csv,` lines for docs/benchmarks.md. Where
# this machine cannot build, it runs the binaries prepare.sh built. Needs .deps/gpu from
# deploy/gpu/prepare.sh (carried along). docs/benchmarks.md, "GPU check".
#
#   ./deploy/gpu/check.sh [--quick] [--bench-only] [gpu_bench flags...]   # under 8 minutes
#
# Wall time per part, measured on an H200 machine with 16 cores (2026-11-27,
# docs/benchmarks.md "GPU check", when parity and the cases were one binary,
# gpu_check): build 22-35 s (45 files, 16 at a time; the peer's cpu_adam is
# JIT-built in the background meanwhile, 45 s); parity ~20 s (now under
# `timeout 150`); cases 102 s (no run starts after gpu_bench's
# --max-seconds, 140 / 80 s with --quick; gpu_bench as a whole under
# `timeout 220`); peer ~50 s (timeout 120 s); the AdamW comparison ~50 s,
# skipped once 420 s are spent. The whole check: 263 s. PARITY=0 (or
# --bench-only) / PEER=0 / ADAM=0 skip those parts; --plan-only (gpu_bench's
# planner part, no GPU needed) skips the parity test too.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
DEPS="$ROOT/.deps/gpu"
BUILD=${GPU_BUILD_DIR:-/tmp/stronghold-gpu-build}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
[ -d "$DEPS/include/absl" ] || { echo "check: $DEPS missing: run deploy/gpu/prepare.sh where Debian's packages are" >&2; exit 1; }
[ -f "$DEPS/lib/libgtest.a" ] || {
  echo "check: no GoogleTest in $DEPS (an older prepare.sh): run deploy/gpu/prepare.sh again" >&2
  exit 1
}
# Which parts run: --bench-only (or PARITY=0) skips the parity test, and so
# does --plan-only; every other argument is gpu_bench's.
PARITY=${PARITY:-1}
BENCH_ARGS=()
for a in "$@"; do
  case "$a" in
    --bench-only|--bench_only) PARITY=0 ;;
    --plan-only|--plan_only) PARITY=0; BENCH_ARGS+=("$a") ;;
    *) BENCH_ARGS+=("$a") ;;
  esac
done
PYTHON=${PYTHON:-python3}
if [ -n "${TORCH_DIR:-}" ]; then  # a LibTorch tree (include/, lib/) instead of the python package
  TORCH=$TORCH_DIR
else
  TORCH=$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  echo "torch $("$PYTHON" -c 'import torch; print(torch.__version__, torch.version.cuda)') at $TORCH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "host: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)" \
  "RAM, kernel $(uname -r)"

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
# The runtime headers include crt/host_config.h, which pip's nvidia-* wheels
# leave out (seen on the H200 image): take the first tree that has both.
CUDA_INC=""
for d in "$CUDA_HOME/include" "$SITE/nvidia" "$DEPS/cuda-include"; do
  inc=$(find_first cuda_runtime.h "$d") || continue
  [ -f "$inc/crt/host_config.h" ] && { CUDA_INC=$inc; break; }
done
[ -n "$CUDA_INC" ] || { echo "check: no cuda_runtime.h with crt/host_config.h found" >&2; exit 1; }
CUDART_DIR=$(find_first 'libcudart.so*' "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$SITE/nvidia") \
  || { echo "check: no libcudart found" >&2; exit 1; }
CUDART=$(cd "$CUDART_DIR" && ls libcudart.so* | sort | head -n 1)
echo "CUDA headers: $CUDA_INC; runtime: $CUDART_DIR/$CUDART"

mkdir -p "$BUILD"
T0=$(date +%s)

# The peer's Python packages: installed (offline) into $PEER_SITE from the
# carried wheels; DeepSpeed's cpu_adam JIT-built in the background while
# core/ compiles (not a job of this shell, so the compile loop below does not
# count it). Packages the image has are installed only where the import fails.
PEER=${PEER:-1}
PEER_SITE=${PEER_SITE:-/tmp/stronghold-peer-site}
PEER_EXT=${PEER_EXT:-/tmp/stronghold-peer-ext}
PEER_REASON=""
peer_install() {
  local w="$DEPS/wheels" pm
  [ -d "$w" ] || { PEER_REASON="no $w (prepare.sh could not fetch the wheels)"; return 1; }
  local pkgs=(deepspeed hjson pydantic pydantic-core annotated-types typing-inspection typing-extensions)
  for pm in ninja:ninja psutil:psutil msgpack:msgpack packaging:packaging py-cpuinfo:cpuinfo \
            einops:einops nvidia-ml-py:pynvml; do
    "$PYTHON" -c "import ${pm#*:}" 2>/dev/null || pkgs+=("${pm%%:*}")
  done
  rm -rf "$PEER_SITE"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
    --find-links "$w" --target "$PEER_SITE" "${pkgs[@]}" > "$BUILD/peer_install.log" 2>&1 \
    || { PEER_REASON="pip install from $w failed: $(tail -n 1 "$BUILD/peer_install.log")"; return 1; }
}
# cpu_adam is a CPU op (DeepSpeed 0.19.8's CUDA accelerator takes it from
# op_builder/cpu: g++ -O3 -march=native -fopenmp, no nvcc, no CUDA
# libraries); DS_SKIP_CUDA_CHECK only keeps a CUDA version check of other
# ops from failing. ninja from the interpreter's own bin/ if that is not on
# PATH.
PYBIN=$("$PYTHON" -c 'import os, sys; print(os.path.dirname(sys.executable))' 2>/dev/null || true)
peer_env() {
  env PYTHONPATH="$PEER_SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$PEER_SITE/bin:$PATH:$PYBIN" \
    TORCH_EXTENSIONS_DIR="$PEER_EXT" DS_ACCELERATOR=cuda DS_SKIP_CUDA_CHECK=1 "$@"
}
if [ "$PEER" = 1 ] && peer_install; then
  # Locks left by a build killed in an earlier run would make this one wait.
  rm -f "$BUILD/cpu_adam.rc" "$PEER_EXT"/*/lock
  ( ( rc=0
      peer_env timeout 420 "$PYTHON" -c 'import time; t = time.time()
from deepspeed.ops.op_builder import CPUAdamBuilder
CPUAdamBuilder().load()
print("cpu_adam built/loaded in %.0f s" % (time.time() - t))' || rc=$?
      echo "$rc" > "$BUILD/cpu_adam.rc" ) > "$BUILD/cpu_adam.log" 2>&1 & )
elif [ "$PEER" != 1 ]; then
  PEER_REASON="PEER=$PEER"
fi

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
# Every library source of core/'s packages and storage/ (the trainer's NVMe
# tier; not core/tools, not the device factories: the parity test and
# gpu_bench make their CUDA device directly); then gpu_bench and its
# helpers, adamw_bench for the CPU optimizer's comparison, and the parity
# test with the training test helpers it shares with tests/core.
BENCH_SOURCES=(core/tools/gpu_bench.cc core/tools/case_table.cc core/tools/bench_run.cc core/tools/gpu_rows.cc
               core/tools/all_on_gpu_baseline.cc)
TEST_SOURCES=(tests/gpu/parity_test.cc tests/core/training_test_util.cc)
SOURCES=()
# core/dist's c10d communicator needs gloo's headers (prepare.sh copies
# Debian's libgloo-dev ones); an older .deps/gpu without them leaves it out
# (nothing else here links it).
GLOO=0
[ -d "$DEPS/include/gloo" ] && GLOO=1
for src in core/*/*.cc storage/*.cc; do
  case "$src" in
    core/tools/*|core/device/device_factory*.cc) ;;
    core/dist/*) if [ "$GLOO" = 1 ]; then SOURCES+=("$src"); fi ;;
    *) SOURCES+=("$src") ;;
  esac
done
# With core/dist: the data-parallel GPU test (NCCL on one rank, 2 ranks on
# this GPU through the test-only staged communicator) in the parity binary.
if [ "$GLOO" = 1 ]; then
  TEST_SOURCES+=(tests/gpu/data_parallel_gpu_test.cc tests/gpu/staged_communicator.cc
                 tests/core/dist/thread_ranks.cc)
fi
# The built-in hardware profiles (core/plan/hardware_profile.h): a file
# Bazel generates with the same script.
mkdir -p "$BUILD/gen"
"$ROOT/deploy/hardware/embed.sh" "$BUILD/gen/builtin_hardware_profiles.cc" \
  "$ROOT"/deploy/hardware/*.json
SOURCES+=("$BUILD/gen/builtin_hardware_profiles.cc")
LIB_SOURCES=("${SOURCES[@]}")
SOURCES+=("${BENCH_SOURCES[@]}" core/tools/adamw_bench.cc "${TEST_SOURCES[@]}")
# --no-as-needed first: nothing in core/ names a symbol of libtorch_cuda.so,
# but without it LibTorch's CUDA hooks are never registered (a linker that
# defaults to --as-needed, as Ubuntu's does, drops it).
LIBS=(-Wl,--no-as-needed -Wl,--allow-shlib-undefined -L"$TORCH/lib" -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10 -ltorch -L"$CUDART_DIR" -l:"$CUDART"
      -L"$DEPS/lib" $(cd "$DEPS/lib" && ls libabsl_*.so | sed 's/^lib\(.*\)\.so$/-l\1/')
      -lglog -lcrypto -luring -pthread)
GTEST=("$DEPS/lib/libgtest_main.a" "$DEPS/lib/libgtest.a")
build() {  # compiles and links $BUILD/parity_test, $BUILD/gpu_bench and $BUILD/adamw_bench
  command -v g++ > /dev/null || { echo "check: no g++ on this machine" >&2; return 1; }
  echo "compiling ${#SOURCES[@]} files with $(g++ --version | head -n 1) on $(nproc) cores ..."
  local start failed=0 src flags
  start=$(date +%s)
  for src in "${SOURCES[@]}"; do
    case "$src" in
      core/optim/adamw_kernel_avx2.cc) flags=("${FP[@]}" -mavx2 -mf16c) ;;
      core/optim/adamw_kernel_avx512.cc) flags=("${FP[@]}" -mavx512f) ;;
      core/optim/*) flags=("${FP[@]}") ;;
      core/dist/*) flags=(-DUSE_C10D_GLOO -DUSE_C10D_NCCL -DUSE_CUDA) ;;
      *) flags=() ;;
    esac
    while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || failed=1; done  # ~1.5 GB each
    compile "$src" "${flags[@]}" &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
  [ "$failed" -eq 0 ] || { echo "check: compilation failed" >&2; return 1; }
  # core/ and storage/ for every binary; core/tools' and tests' objects
  # only for the binary that uses them (named after SOURCES, not whatever
  # an older tree left in $BUILD).
  objects() { local s; for s in "$@"; do echo "$BUILD/$(echo "$s" | tr / _).o"; done; }
  local lib bench tests
  local rpath=(-Wl,--disable-new-dtags -Wl,-rpath,"$TORCH/lib:$DEPS/lib:$CUDART_DIR")
  mapfile -t lib < <(objects "${LIB_SOURCES[@]}")
  mapfile -t bench < <(objects "${BENCH_SOURCES[@]}")
  mapfile -t tests < <(objects "${TEST_SOURCES[@]}")
  g++ -o "$BUILD/parity_test" "${tests[@]}" "${lib[@]}" "${GTEST[@]}" "${LIBS[@]}" "${rpath[@]}" &&
    g++ -o "$BUILD/gpu_bench" "${bench[@]}" "${lib[@]}" "${LIBS[@]}" "${rpath[@]}" &&
    g++ -o "$BUILD/adamw_bench" "$(objects core/tools/adamw_bench.cc)" "${lib[@]}" "${LIBS[@]}" \
      "${rpath[@]}" || return 1
  echo "built in $(( $(date +%s) - start )) s"
}
# Binaries prepare.sh built on the Debian machine against the same LibTorch
# 2.11 (cu130) wheel: used only where this machine cannot build (no g++, or
# a compiler that fails), with the libraries found through LD_LIBRARY_PATH.
BIN=$BUILD
if ! build; then
  [ -x "$DEPS/bin/gpu_bench" ] && [ -x "$DEPS/bin/parity_test" ] ||
    { echo "check: build failed and no prebuilt $DEPS/bin" >&2; exit 1; }
  echo "check: build failed here; running the binaries prepare.sh built ($DEPS/bin)"
  BIN=$DEPS/bin
fi
[ -n "${BUILD_ONLY:-}" ] && exit 0
# Our binaries' libraries: RPATH covers libglog -> libgflags (RUNPATH, the
# default of Ubuntu's linker, would not); LD_LIBRARY_PATH besides, for them
# only (the peer's Python keeps its own libraries).
OURS=(env LD_LIBRARY_PATH="$TORCH/lib:$DEPS/lib:$CUDART_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
status=0
set -o pipefail
# The parity test first: the figures below mean something only if the
# engine computes the same thing on the GPU as on the CPU. Its job
# directories go to $BUILD/parity.
if [ "$PARITY" = 1 ]; then
  parity=0
  mkdir -p "$BUILD/parity"
  "${OURS[@]}" OMP_WAIT_POLICY=passive TEST_TMPDIR="$BUILD/parity" timeout 150 \
    "$BIN/parity_test" 2>&1 | tee "$BUILD/parity.log" || parity=$?
  [ "$parity" -eq 124 ] && echo "parity: stopped by timeout 150 s"
  echo "parity: $([ "$parity" -eq 0 ] && echo PASS || echo "FAIL (exit $parity)")," \
    "log $BUILD/parity.log, $(( $(date +%s) - T0 )) s since the start of check.sh"
  status=$parity
else
  echo "parity: not run (PARITY=$PARITY, --bench-only or --plan-only)"
fi
# Each benchmark row's last step as a Chrome trace (chrome://tracing, Perfetto).
rm -rf "$BUILD/traces" && mkdir -p "$BUILD/traces"
bench=0
"${OURS[@]}" OMP_WAIT_POLICY=passive timeout 220 "$BIN/gpu_bench" --trace-dir "$BUILD/traces" \
  ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} 2>&1 | tee "$BUILD/gpu_bench.log" || bench=$?
echo "gpu_bench: traces in $BUILD/traces ($(ls "$BUILD/traces" | wc -l) files)"
[ "$bench" -eq 124 ] && echo "gpu_bench: stopped by timeout 220 s"
echo "gpu_bench: exit $bench, $(( $(date +%s) - T0 )) s since the start of check.sh"
[ "$status" -ne 0 ] || status=$bench

# The peer, on the model and GPU of gpu_bench's runs: run_peer LOG ARGS
# runs it (4 steps with --quick, 5 otherwise) under timeout 120 s, its
# output in LOG and on the terminal but DeepSpeed's [...] lines.
PEER_STEPS=5; case " $* " in *" --quick "*) PEER_STEPS=4 ;; esac
run_peer() {
  local log=$1; shift
  peer_env timeout 120 "$PYTHON" -u "$ROOT/deploy/gpu/zero_offload_peer.py" "$@" --steps "$PEER_STEPS" \
    2>&1 | tee "$log" | grep -v '^\[' || true
}
if [ -z "$PEER_REASON" ]; then
  ARGS=$(sed -n 's/^peer-args: //p' "$BUILD/gpu_bench.log" | tail -n 1)
  if [ -z "$ARGS" ]; then
    PEER_REASON="gpu_bench printed no peer-args line"
  else
    echo "peer: cpu_adam JIT build: $(tail -n 1 "$BUILD/cpu_adam.log" 2>/dev/null)" \
      "(exit $(cat "$BUILD/cpu_adam.rc" 2>/dev/null || echo 'none yet: still running, the peer waits for it');" \
      "log $BUILD/cpu_adam.log)"
    # A background build that failed or timed out may leave torch's lock
    # behind, on which the peer would wait: it then builds cpu_adam itself.
    if [ -f "$BUILD/cpu_adam.rc" ] && [ "$(cat "$BUILD/cpu_adam.rc")" != 0 ]; then
      rm -f "$PEER_EXT/cpu_adam/lock"
    fi
    # shellcheck disable=SC2086  # ARGS is gpu_bench's word list
    run_peer "$BUILD/peer.log" $ARGS
    rc=$(grep -c '^csv,zero_offload' "$BUILD/peer.log" || true)
    if [ "$rc" = 0 ] && ! grep -q '^peer: not run' "$BUILD/peer.log"; then
      PEER_REASON="no result within timeout 120 s (log $BUILD/peer.log: $(tail -n 1 "$BUILD/peer.log"))"
    fi
  fi
fi
[ -n "$PEER_REASON" ] && echo "peer: not run: $PEER_REASON"
# The peer in bf16 against gpu_bench's bf16 rows (its own peer-args-bf16
# line), when time is left (PEER_BF16=0 skips it).
PEER_BF16=${PEER_BF16:-1}
PEER_BF16_AFTER=${PEER_BF16_AFTER:-360}  # seconds since the start past which it is skipped
if [ -z "$PEER_REASON" ] && [ "$PEER_BF16" = 1 ]; then
  ARGS=$(sed -n 's/^peer-args-bf16: //p' "$BUILD/gpu_bench.log" | tail -n 1)
  spent=$(( $(date +%s) - T0 ))
  if [ -z "$ARGS" ]; then
    echo "peer bf16: not run: gpu_bench printed no peer-args-bf16 line (no bf16 row ran)"
  elif [ "$spent" -gt "$PEER_BF16_AFTER" ]; then
    echo "peer bf16: not run: $spent s spent (PEER_BF16_AFTER=$PEER_BF16_AFTER)"
  else
    # shellcheck disable=SC2086  # ARGS is gpu_bench's word list
    run_peer "$BUILD/peer_bf16.log" $ARGS
    grep -q '^csv,zero_offload_bf16' "$BUILD/peer_bf16.log" ||
      echo "peer bf16: no result within timeout 120 s (log $BUILD/peer_bf16.log)"
  fi
fi

# The CPU optimizer against DeepSpeed's CPU Adam on this machine's cores, the
# same 64 Mi parameters and thread counts (docs/benchmarks.md, "CPU AdamW";
# the Debian machine has 2 cores only), when time is left (ADAM=0 skips it).
ADAM=${ADAM:-1}
ADAM_AFTER=${ADAM_AFTER:-420}  # seconds since the start past which it is skipped
if [ "$ADAM" = 1 ]; then
  spent=$(( $(date +%s) - T0 ))
  if [ "$spent" -gt "$ADAM_AFTER" ]; then
    echo "adam: not run: $spent s spent (ADAM_AFTER=$ADAM_AFTER)"
  else
    n=$(nproc)
    THREADS=$(printf '%s\n' 1 $((n / 4)) $((n / 2)) "$n" | awk '$1 > 0' | sort -nu | paste -sd,)
    echo "adam: fused AdamW and DeepSpeedCPUAdam at $THREADS threads, 64 Mi parameters"
    "${OURS[@]}" timeout 60 "$BIN/adamw_bench" $((64 << 20)) "$THREADS" 2>&1 || echo "adam: adamw_bench exit $?"
    if [ -z "$PEER_REASON" ] && [ "$(cat "$BUILD/cpu_adam.rc" 2>/dev/null)" = 0 ]; then
      peer_env timeout 90 "$PYTHON" -u "$ROOT/core/tools/deepspeed_adam_bench.py" $((64 << 20)) \
        "$THREADS," 2>&1 | grep -v '^\[' || echo "adam: deepspeed_adam_bench failed"
    else
      echo "adam: DeepSpeedCPUAdam not run (peer: ${PEER_REASON:-cpu_adam not built})"
    fi
  fi
fi
echo "check.sh: $(( $(date +%s) - T0 )) s in all"
exit "$status"
