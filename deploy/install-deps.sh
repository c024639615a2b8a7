#!/usr/bin/env bash
# Installs everything strongholdd needs to build and test, idempotently:
#   1. Debian packages (Bazel 4 from bazel-bootstrap, gRPC, protobuf, Abseil, glog,
#      GoogleTest, liburing, prometheus-cpp, libsystemd, and test tools, clang's
#      libFuzzer included);
#   2. LibTorch 2.11.0 unpacked from the torch==2.11.0 wheel on PyPI into the
#      project-local, git-ignored prefix .deps/libtorch (only include/ and lib/);
#   3. the Python package `tokenizers` for Debian's python3 (deploy/tools/
#      prepare_data.py and its test), from PyPI when missing.
# Each step says what it does; a step that cannot be done stops the script with
# a message naming what is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TORCH_VERSION=2.11.0
TOKENIZERS_VERSION=0.23.3
PREFIX="$ROOT/.deps/libtorch"

step() { printf '==> %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(
  bazel-bootstrap bazel-platforms bazel-rules-java
  g++ unzip python3 python3-pip
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev liburing-dev prometheus-cpp-dev libcivetweb-dev
  libgtest-dev libgmock-dev libbenchmark-dev libgoogle-glog-dev libsystemd-dev
  libssl-dev
  # Gloo's headers, which LibTorch's ProcessGroupGloo.hpp includes and the
  # wheel lacks (core/dist); headers only: libtorch_cpu.so exports gloo.
  libgloo-dev
  # Observability and deployment tests (tests/integration/observability_*):
  # the real Prometheus and promtool, systemd-analyze and systemd-sysusers,
  # patchelf for deploy/install.sh, PyYAML for the tests' configuration,
  # strace for the daemon's system calls against the unit's filter.
  prometheus systemd patchelf python3-yaml strace
  # `strongholdctl bench` draws its plots with Debian's python3 and matplotlib
  # (deploy/bench/plot.py; tests/integration/bench_test).
  python3-matplotlib
  # The fuzzers (tests/fuzz/build_and_run.sh): clang with libFuzzer and the
  # ASan/UBSan runtimes (libclang-rt-14-dev), make, and pkg-config for the
  # system libraries' link flags.
  clang-14 libclang-rt-14-dev make pkgconf
  # deploy/format.sh (run by deploy/test.sh): the C++ tree's formatting.
  clang-format
  # The NVMe tier's benchmark (//core/tools:io_bench) runs fio beside its own
  # backends at the same block size, queue depth and O_DIRECT.
  fio
)

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  step "Debian packages: all ${#APT_PACKAGES[@]} present"
else
  step "Debian packages: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    die "not root and no sudo: install these packages first: ${missing[*]}"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || die "apt-get update failed (is a Debian mirror reachable?)"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]}"
fi

command -v bazel >/dev/null || die "bazel not on PATH after installing bazel-bootstrap"
# Debian's /usr/bin/bazel wrapper runs /usr/bin/bazel-$(cat .bazelversion); the
# package installs the binary as /usr/bin/bazel-4 (it reports "no_version").
BAZEL_VERSION=$(cat "$ROOT/.bazelversion")
if [ ! -x "/usr/bin/bazel-$BAZEL_VERSION" ]; then
  step "Bazel: linking /usr/bin/bazel-$BAZEL_VERSION -> bazel-4 (Debian's bazel-bootstrap)"
  [ -x /usr/bin/bazel-4 ] || die "/usr/bin/bazel-4 missing (package bazel-bootstrap)"
  $SUDO ln -sf bazel-4 "/usr/bin/bazel-$BAZEL_VERSION" || die "cannot create /usr/bin/bazel-$BAZEL_VERSION"
fi
[ -d /usr/share/bazel/tools/platforms ] || die "/usr/share/bazel/tools/platforms missing (package bazel-platforms)"
[ -d /usr/share/bazel/rules/java ] || die "/usr/share/bazel/rules/java missing (package bazel-rules-java)"

# The wheel's libtorch_cpu.so is linked against the CUDA runtime and CUPTI
# (CUDA 13); they come from the CUDA toolkit at /usr/local/cuda.
for lib in libcudart.so.13 libcupti.so.13; do
  [ -e "/usr/local/cuda/lib/$lib" ] || [ -e "/usr/local/cuda/lib64/$lib" ] \
    || die "/usr/local/cuda/lib/$lib not found: LibTorch $TORCH_VERSION (cu130 wheel) needs the CUDA 13 toolkit at /usr/local/cuda"
done

if [ -f "$PREFIX/.installed-$TORCH_VERSION" ]; then
  step "LibTorch $TORCH_VERSION: present in $PREFIX"
else
  step "LibTorch $TORCH_VERSION: downloading the torch==$TORCH_VERSION wheel from PyPI"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
    -d "$tmp" "torch==$TORCH_VERSION" \
    || die "could not download torch==$TORCH_VERSION from PyPI"
  wheel=$(ls "$tmp"/torch-"$TORCH_VERSION"-*.whl | head -n 1)
  step "LibTorch $TORCH_VERSION: unpacking include/ and lib/ into $PREFIX"
  unzip -q -o "$wheel" 'torch/include/*' 'torch/lib/*' -d "$tmp/x" || die "could not unpack $wheel"
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  mv "$tmp/x/torch/include" "$tmp/x/torch/lib" "$PREFIX/"
  # The wheel ships protobuf 3.13 headers (for its ONNX code) in include/google;
  # they would shadow Debian's protobuf 3.21 headers in our generated gRPC code.
  # LibTorch's public headers never include them (docs/build.md).
  rm -rf "$PREFIX/include/google" "$PREFIX/lib/libtorch_python.so"
  touch "$PREFIX/.installed-$TORCH_VERSION"
fi
# deploy/tools/prepare_data.py tokenizes with Hugging Face's `tokenizers`
# (a Rust wheel, ~12 MB; no Debian package). Into Debian's python3, which the
# Bazel tests run (--incompatible_strict_action_env: /bin:/usr/bin:/usr/local/bin), without its dependency
# huggingface_hub: only Tokenizer.from_pretrained needs that, and we load
# tokenizer.json files.
if /usr/bin/python3 -c 'import tokenizers' 2>/dev/null; then
  step "tokenizers: present for /usr/bin/python3"
else
  step "tokenizers $TOKENIZERS_VERSION: installing from PyPI for /usr/bin/python3"
  $SUDO /usr/bin/python3 -m pip install --quiet --no-deps --only-binary=:all: \
    --break-system-packages "tokenizers==$TOKENIZERS_VERSION" \
    || die "could not install tokenizers==$TOKENIZERS_VERSION from PyPI"
fi
step "done"
