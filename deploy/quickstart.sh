#!/usr/bin/env bash
# From a fresh clone to a trained checkpoint: installs what is missing, builds
# strongholdd and strongholdctl, starts a private daemon (its own unix socket
# and state directory), trains a small GPT on the built-in dataset while
# showing progress, fetches the checkpoint and stops the daemon.
#
# Environment: STRONGHOLD_QUICKSTART_DIR (default ./quickstart-out) holds the
# daemon's state, its log and the fetched checkpoint.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$(realpath -m "${STRONGHOLD_QUICKSTART_DIR:-$ROOT/quickstart-out}")  # roots are absolute

step() { printf '\n==> %s\n' "$*"; }

./deploy/install-deps.sh
step "building strongholdd and strongholdctl"
bazel build //server:strongholdd //client:strongholdctl
BIN=$(bazel info bazel-bin 2>/dev/null)
DAEMON="$BIN/server/strongholdd"
# OpenMP workers that spin between operations starve the optimizer and copy threads.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
CTL="$BIN/client/strongholdctl"

mkdir -p "$OUT"
SOCK_DIR=$(mktemp -d /tmp/stronghold-quickstart.XXXXXX)  # socket paths must be short
export STRONGHOLD_DAEMON="unix:$SOCK_DIR/strongholdd.sock"
step "starting strongholdd (state in $OUT/state, log in $OUT/daemon.log)"
# Token files for --data go in $OUT/data, NVMe tier directories for --ssd-dir
# in $OUT/ssd: the daemon uses no other paths a job names.
mkdir -p "$OUT/data" "$OUT/ssd"
"$DAEMON" --socket "$SOCK_DIR/strongholdd.sock" --state_dir "$OUT/state" \
  --data_root "$OUT/data" --ssd_root "$OUT/ssd" --node_profile_nvme_mib=64 \
  >"$OUT/daemon.log" 2>&1 &
PID=$!
cleanup() {
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    wait "$PID" || true
  fi
  rm -rf "$SOCK_DIR"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  "$CTL" node >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$OUT/daemon.log"; exit 1; }
  sleep 0.1
done
"$CTL" node

# The windowed offload engine with a device budget that holds only part of
# the model's training state; the window is chosen after profiling step 1.
JOB_FLAGS=(--name quickstart --layers 4 --hidden 128 --heads 4 --seq-len 128 --vocab 256
           --batch 16 --micro-batch 8 --steps 200 --lr 3e-3 --checkpoint-every 100
           --method stronghold --window 0 --gpu-memory-budget 27MiB)
step "memory plan of the default job"
"$CTL" plan "${JOB_FLAGS[@]}"
step "submitting the default job: a small GPT on the built-in dataset, offloaded (STRONGHOLD)"
SUBMITTED=$("$CTL" submit "${JOB_FLAGS[@]}" --output json) || exit 1
JOB=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])' <<<"$SUBMITTED")
echo "submitted $JOB"
step "training (strongholdctl watch $JOB)"
"$CTL" watch "$JOB"

step "fetching the checkpoint"
"$CTL" fetch "$JOB" --out "$OUT/checkpoint"
"$CTL" status "$JOB"
cat <<MSG

Done. The trained weights are in
  $OUT/checkpoint/model.safetensors
Load them in PyTorch with
  from safetensors.torch import load_file   # pip install safetensors
  weights = load_file("$OUT/checkpoint/model.safetensors")
  print(weights["layers.0.attn.qkv.weight"].shape)
Tensor names and shapes: docs/checkpoints.md.
MSG
