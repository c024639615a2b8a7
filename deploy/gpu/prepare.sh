#!/usr/bin/env bash
# Packs what deploy/gpu/check.sh needs besides CUDA and PyTorch into
# .deps/gpu (git-ignored), to be carried to a GPU machine that has no
# network: Abseil, glog/gflags/libunwind and OpenSSL's libcrypto headers and
# shared libraries from this Debian 12 machine (about 45 MiB with
# the CUDA runtime headers).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="$ROOT/.deps/gpu"
LIB=/usr/lib/x86_64-linux-gnu
rm -rf "$OUT"
mkdir -p "$OUT/include" "$OUT/lib"
for d in absl glog gflags openssl; do
  [ -d "/usr/include/$d" ] || { echo "prepare: /usr/include/$d missing (run deploy/install-deps.sh)" >&2; exit 1; }
  cp -r "/usr/include/$d" "$OUT/include/"
done
# CUDA runtime headers, for a GPU machine whose CUDA came only with pip's
# nvidia-* wheels (check.sh prefers the machine's own headers).
cp -r /usr/local/cuda/include "$OUT/cuda-include"
cp -P "$LIB"/libabsl_*.so* "$LIB"/libglog.so* "$LIB"/libgflags.so* "$LIB"/libunwind.so.8* \
  "$LIB"/libcrypto.so* "$OUT/lib/"
echo "prepared $OUT ($(du -sh "$OUT" | cut -f1)); carry it with the working tree"
